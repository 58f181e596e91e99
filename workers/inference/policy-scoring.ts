import { cosineScores, ensembleClassEmbeddings, fillTemplate, softmax } from '../../shared/clip/index.ts';
import type { LabelResult, PolicyDocument } from '../../shared/policy/index.ts';

// Policy scoring as plain maths: text embeddings in, one LabelResult per label out.
// Each prompt is one class (its embedding is the ensemble of the prompt filled into every template).
// softmax: one softmax over every prompt class plus every baseline prompt; a label's score is the
//   sum of its prompts' probabilities (the chance the image is any of the things the label names).
// independent: each prompt against the baseline alone, so labels never compete; a label's score is
//   its best prompt's probability. Without a baseline, the raw cosine similarity clamped to [0, 1].
// Exclude prompts stay out of both softmaxes, so adding one never moves any score: a label is
//   suppressed when one of its exclude prompts is closer to the image (cosine) than its best prompt.
// Evidence is the label's prompt with the highest score, and for animations the frame it came from:
//   the best frame where the label triggers, else the best frame overall (suppressed or not).

type PolicyPrompt = { labelIndex: number; prompt: string };

export type PreparedPolicy = {
  document: PolicyDocument;
  dim: number;
  prompts: PolicyPrompt[];
  /** [prompts.length + baselineCount, dim] class embeddings: label prompts first, then baseline. */
  classes: Float32Array;
  baselineCount: number;
  excludes: PolicyPrompt[];
  /** [excludes.length, dim] class embeddings of the exclude prompts. */
  excludeClasses: Float32Array;
};

function labelPrompts(document: PolicyDocument, field: 'prompts' | 'exclude'): PolicyPrompt[] {
  return document.labels.flatMap((label, labelIndex) =>
    (label[field] ?? []).map((prompt) => ({ labelIndex, prompt })),
  );
}

/** Every text the policy needs embedded (templates filled), in the order preparePolicy reads them. */
export function policyTexts(document: PolicyDocument): string[] {
  const templates = document.templates ?? ['{}'];
  const classes = [
    ...labelPrompts(document, 'prompts').map(({ prompt }) => prompt),
    ...document.baseline,
    ...labelPrompts(document, 'exclude').map(({ prompt }) => prompt),
  ];
  return classes.flatMap((prompt) => templates.map((t) => fillTemplate(t, prompt)));
}

/** `embeddings` holds policyTexts(document) in order: [texts, dim], unit rows. */
export function preparePolicy(
  document: PolicyDocument,
  embeddings: Float32Array,
  dim: number,
): PreparedPolicy {
  const templateCount = (document.templates ?? ['{}']).length;
  const prompts = labelPrompts(document, 'prompts');
  const all = ensembleClassEmbeddings(embeddings, dim, templateCount);
  const scoredLength = (prompts.length + document.baseline.length) * dim;
  return {
    document,
    dim,
    prompts,
    classes: all.subarray(0, scoredLength),
    baselineCount: document.baseline.length,
    excludes: labelPrompts(document, 'exclude'),
    excludeClasses: all.subarray(scoredLength),
  };
}

/** Prompt scores and cosines for one image embedding: one entry per prepared prompt. */
function promptScores(prepared: PreparedPolicy, image: Float32Array, logitScale: number) {
  const cosines = cosineScores(image, prepared.classes, prepared.dim);
  const logits = Array.from(cosines, (cosine) => cosine * logitScale);
  const promptCount = prepared.prompts.length;
  const promptCosines = Array.from(cosines.subarray(0, promptCount));
  const baseline = logits.slice(promptCount);
  let scores: number[];
  if (prepared.document.scoring === 'softmax') scores = Array.from(softmax(logits).subarray(0, promptCount));
  else if (prepared.baselineCount === 0) scores = promptCosines.map((c) => Math.min(1, Math.max(0, c)));
  else scores = logits.slice(0, promptCount).map((logit) => softmax([logit, ...baseline])[0]!);
  return { scores, cosines: promptCosines };
}

/** One frame's result per label, with the exclude prompt that suppresses it, if any. */
function frameResults(prepared: PreparedPolicy, image: Float32Array, logitScale: number): LabelResult[] {
  const { document, prompts } = prepared;
  const { scores, cosines } = promptScores(prepared, image, logitScale);
  const results = document.labels.map((label) => ({ labelId: label.id, score: 0, prompt: '', cosine: -2 }));
  prompts.forEach(({ labelIndex, prompt }, i) => {
    const result = results[labelIndex]!;
    const score = scores[i]!;
    result.score = document.scoring === 'softmax' ? result.score + score : Math.max(result.score, score);
    if (cosines[i]! > result.cosine) Object.assign(result, { prompt, cosine: cosines[i]! });
  });
  const bestExclude = new Map<number, { prompt: string; cosine: number }>();
  const excludeCosines = cosineScores(image, prepared.excludeClasses, prepared.dim);
  prepared.excludes.forEach(({ labelIndex, prompt }, i) => {
    const cosine = excludeCosines[i]!;
    if (cosine > (bestExclude.get(labelIndex)?.cosine ?? -2)) bestExclude.set(labelIndex, { prompt, cosine });
  });
  return results.map(({ cosine, ...result }, labelIndex): LabelResult => {
    const exclude = bestExclude.get(labelIndex);
    return exclude !== undefined && exclude.cosine > cosine
      ? { ...result, suppressedBy: exclude.prompt }
      : result;
  });
}

/** Frames where the label triggers rank first, then by score. */
function rankOf(result: LabelResult, threshold: number): [number, number] {
  const triggers = result.suppressedBy === undefined && result.score >= threshold;
  return [triggers ? 1 : 0, result.score];
}

function isBetter(candidate: LabelResult, current: LabelResult | undefined, threshold: number): boolean {
  if (current === undefined) return true;
  const [a, b] = [rankOf(candidate, threshold), rankOf(current, threshold)];
  return a[0] !== b[0] ? a[0] > b[0] : a[1] > b[1];
}

/** Scores every frame ([frames, dim] unit rows) and keeps, per label, the frame that matters most. */
export function scorePolicy(
  prepared: PreparedPolicy,
  frames: Float32Array,
  frameIndexes: readonly number[],
  logitScale: number,
): LabelResult[] {
  const { dim, document } = prepared;
  const best: (LabelResult | undefined)[] = document.labels.map(() => undefined);
  frameIndexes.forEach((frame, slot) => {
    const image = frames.subarray(slot * dim, (slot + 1) * dim);
    frameResults(prepared, image, logitScale).forEach((result, labelIndex) => {
      if (!isBetter(result, best[labelIndex], document.labels[labelIndex]!.threshold)) return;
      best[labelIndex] = frameIndexes.length > 1 ? { ...result, frame } : result;
    });
  });
  return best.map(
    (result, labelIndex) => result ?? { labelId: document.labels[labelIndex]!.id, score: 0, prompt: '' },
  );
}
