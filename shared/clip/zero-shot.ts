// Zero-shot scoring as plain maths over flat row-major Float32Arrays: prompt ensembles, cosine,
// logits and softmax. No I/O and no model here, so every number can be checked by hand.
import { ClipmodError } from '../errors/index.ts';

/** The transformers zero-shot-image-classification pipeline's default hypothesis template. */
export const defaultPromptTemplate = 'This is a photo of {}.';

export type LabelScore = { label: string; score: number };

/** Scales each row of `rows` ([count, dim]) to unit L2 norm, in place; all-zero rows stay zero. */
export function normalizeRows(rows: Float32Array, dim: number): Float32Array {
  for (let offset = 0; offset < rows.length; offset += dim) {
    let sumSquares = 0;
    for (let index = offset; index < offset + dim; index += 1) sumSquares += rows[index]! ** 2;
    const norm = Math.sqrt(sumSquares);
    if (norm === 0) continue;
    for (let index = offset; index < offset + dim; index += 1) rows[index] = rows[index]! / norm;
  }
  return rows;
}

export function fillTemplate(template: string, label: string): string {
  if (!template.includes('{}')) {
    throw new ClipmodError(
      'bad_request',
      `prompt template "${template}" has no {} placeholder for the label`,
      {
        details: { field: 'template' },
      },
    );
  }
  return template.replaceAll('{}', label);
}

/** Every template filled with every label, label-major: label 0 × all templates, then label 1, … */
export function expandPrompts(labels: readonly string[], templates: readonly string[]): string[] {
  return labels.flatMap((label) => templates.map((template) => fillTemplate(template, label)));
}

/**
 * One class embedding per consecutive group of `templateCount` prompt embeddings: normalise each,
 * average, renormalise — the ensemble of the CLIP prompt-engineering notebook.
 */
export function ensembleClassEmbeddings(
  promptEmbeddings: Float32Array,
  dim: number,
  templateCount: number,
): Float32Array {
  const promptCount = promptEmbeddings.length / dim;
  if (!Number.isInteger(promptCount) || promptCount % templateCount !== 0) {
    throw new RangeError(`${promptCount} prompt rows do not split into groups of ${templateCount}`);
  }
  const normalized = normalizeRows(promptEmbeddings.slice(), dim);
  const classes = new Float32Array((promptCount / templateCount) * dim);
  for (let prompt = 0; prompt < promptCount; prompt += 1) {
    const target = Math.floor(prompt / templateCount) * dim;
    for (let axis = 0; axis < dim; axis += 1) {
      classes[target + axis] = classes[target + axis]! + normalized[prompt * dim + axis]! / templateCount;
    }
  }
  return normalizeRows(classes, dim);
}

/** Cosine similarity of every image row with every class row: [images, classes], row-major. */
export function cosineScores(images: Float32Array, classes: Float32Array, dim: number): Float64Array {
  const imageCount = images.length / dim;
  const classCount = classes.length / dim;
  const scores = new Float64Array(imageCount * classCount);
  for (let image = 0; image < imageCount; image += 1) {
    for (let cls = 0; cls < classCount; cls += 1) {
      scores[image * classCount + cls] = cosine(images, image * dim, classes, cls * dim, dim);
    }
  }
  return scores;
}

function cosine(a: Float32Array, aOffset: number, b: Float32Array, bOffset: number, dim: number): number {
  let dot = 0;
  let aSquares = 0;
  let bSquares = 0;
  for (let axis = 0; axis < dim; axis += 1) {
    const x = a[aOffset + axis]!;
    const y = b[bOffset + axis]!;
    dot += x * y;
    aSquares += x * x;
    bSquares += y * y;
  }
  const norms = Math.sqrt(aSquares * bSquares);
  return norms === 0 ? 0 : dot / norms;
}

/** CLIP logits: the cosine scaled by the model's trained temperature (100 for OpenAI CLIP). */
export function logitsFromCosines(cosines: ArrayLike<number>, logitScale: number): Float64Array {
  return Float64Array.from(cosines, (value) => value * logitScale);
}

/** Softmax over consecutive rows of `width`; subtracting each row's max keeps exp() finite. */
export function softmaxRows(values: ArrayLike<number>, width: number): Float64Array {
  const out = new Float64Array(values.length);
  for (let offset = 0; offset < values.length; offset += width) {
    let max = Number.NEGATIVE_INFINITY;
    for (let index = offset; index < offset + width; index += 1) max = Math.max(max, values[index]!);
    let sum = 0;
    for (let index = offset; index < offset + width; index += 1) {
      out[index] = Math.exp(values[index]! - max);
      sum += out[index]!;
    }
    for (let index = offset; index < offset + width; index += 1) out[index] = out[index]! / sum;
  }
  return out;
}

export function softmax(values: ArrayLike<number>): Float64Array {
  return softmaxRows(values, values.length);
}

/**
 * Probabilities of one image over the classes, as the transformers zero-shot pipeline computes
 * them: softmax of logitScale × cosine.
 */
export function zeroShotProbabilities(
  image: Float32Array,
  classes: Float32Array,
  dim: number,
  logitScale: number,
): Float64Array {
  return softmax(logitsFromCosines(cosineScores(image, classes, dim), logitScale));
}

/** Labels paired with their scores, highest first; ties keep the caller's label order. */
export function rankLabels(labels: readonly string[], scores: ArrayLike<number>): LabelScore[] {
  if (labels.length !== scores.length) {
    throw new RangeError(`${labels.length} labels but ${scores.length} scores`);
  }
  return labels.map((label, index) => ({ label, score: scores[index]! })).sort((a, b) => b.score - a.score);
}
