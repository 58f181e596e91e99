import { cosineScores, ensembleClassEmbeddings, fillTemplate, softmax } from '../../shared/clip/index.ts';
import type { LabelResult, PolicyDocument } from '../../shared/policy/index.ts';

// Policy scoring as plain maths: text embeddings in, one LabelResult per label out.
// Each prompt is one class (its embedding is the ensemble of the prompt filled into every template).
// softmax: one softmax over every prompt class plus every baseline prompt; a label's score is the
//   sum of its prompts' probabilities (the chance the image is any of the things the label names).
// independent: each prompt against the baseline alone, so labels never compete; a label's score is
//   its best prompt's probability. Without a baseline, the raw cosine similarity clamped to [0, 1].
// Evidence is the label's prompt with the highest score, and for animations the frame it came from.

type PreparedPrompt = { labelIndex: number; prompt: string };

export type PreparedPolicy = {
  document: PolicyDocument;
  dim: number;
  prompts: PreparedPrompt[];
  /** [prompts.length + baselineCount, dim] class embeddings: label prompts first, then baseline. */
  classes: Float32Array;
  baselineCount: number;
};

/** Every text the policy needs embedded (templates filled), in the order preparePolicy reads them. */
export function policyTexts(document: PolicyDocument): string[] {
  const templates = document.templates ?? ['{}'];
  const prompts = document.labels.flatMap((label) => label.prompts);
  return [...prompts, ...document.baseline].flatMap((prompt) =>
    templates.map((t) => fillTemplate(t, prompt)),
  );
}

/** `embeddings` holds policyTexts(document) in order: [texts, dim], unit rows. */
export function preparePolicy(
  document: PolicyDocument,
  embeddings: Float32Array,
  dim: number,
): PreparedPolicy {
  const templateCount = (document.templates ?? ['{}']).length;
  const prompts = document.labels.flatMap((label, labelIndex) =>
    label.prompts.map((prompt) => ({ labelIndex, prompt })),
  );
  return {
    document,
    dim,
    prompts,
    classes: ensembleClassEmbeddings(embeddings, dim, templateCount),
    baselineCount: document.baseline.length,
  };
}

/** Prompt scores for one image embedding: one number per prepared prompt. */
function promptScores(prepared: PreparedPolicy, image: Float32Array, logitScale: number): number[] {
  const cosines = cosineScores(image, prepared.classes, prepared.dim);
  const logits = Array.from(cosines, (cosine) => cosine * logitScale);
  const promptCount = prepared.prompts.length;
  const baseline = logits.slice(promptCount);
  if (prepared.document.scoring === 'softmax') return Array.from(softmax(logits).subarray(0, promptCount));
  if (prepared.baselineCount === 0)
    return Array.from(cosines.subarray(0, promptCount), (c) => Math.min(1, Math.max(0, c)));
  return logits.slice(0, promptCount).map((logit) => softmax([logit, ...baseline])[0]!);
}

/** Scores every frame ([frames, dim] unit rows) and keeps, per label, the frame that scored highest. */
export function scorePolicy(
  prepared: PreparedPolicy,
  frames: Float32Array,
  frameIndexes: readonly number[],
  logitScale: number,
): LabelResult[] {
  const { dim, prompts, document } = prepared;
  const best: LabelResult[] = document.labels.map((label) => ({ labelId: label.id, score: -1, prompt: '' }));
  frameIndexes.forEach((frame, slot) => {
    const scores = promptScores(prepared, frames.subarray(slot * dim, (slot + 1) * dim), logitScale);
    const labelScores = new Array<number>(document.labels.length).fill(0);
    const bestPrompt = document.labels.map(() => ({ prompt: '', score: -1 }));
    prompts.forEach(({ labelIndex, prompt }, i) => {
      const score = scores[i]!;
      labelScores[labelIndex] =
        document.scoring === 'softmax'
          ? labelScores[labelIndex]! + score
          : Math.max(labelScores[labelIndex]!, score);
      if (score > bestPrompt[labelIndex]!.score) bestPrompt[labelIndex] = { prompt, score };
    });
    labelScores.forEach((score, labelIndex) => {
      if (score <= best[labelIndex]!.score) return;
      const result: LabelResult = {
        labelId: document.labels[labelIndex]!.id,
        score,
        prompt: bestPrompt[labelIndex]!.prompt,
      };
      if (frameIndexes.length > 1) result.frame = frame;
      best[labelIndex] = result;
    });
  });
  return best;
}
