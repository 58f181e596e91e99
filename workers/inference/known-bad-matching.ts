import type { LabelResult } from '../../shared/policy/index.ts';
import { type BankEntry, dot } from '../../shared/retention/index.ts';

// Known-bad bank matching as plain maths: an image (any of its frames) within `maxCosineDistance` of a
// bank entry triggers the entry's label, with the entry and the similarity as evidence. The closest
// entry per label wins. Entries of another model (another embedding space) are skipped.

export type BankMatchOptions = { entries: readonly BankEntry[]; modelId: string; maxCosineDistance: number };

export function applyBankMatches(
  results: readonly LabelResult[],
  frames: Float32Array,
  dim: number,
  options: BankMatchOptions,
): LabelResult[] {
  const best = new Map<string, { bankEntry: string; similarity: number }>();
  const minSimilarity = 1 - options.maxCosineDistance;
  for (const entry of options.entries) {
    if (entry.embedding.length !== dim || entry.model !== options.modelId) continue;
    for (let offset = 0; offset + dim <= frames.length; offset += dim) {
      const similarity = dot(entry.embedding, frames, offset);
      const current = best.get(entry.label);
      if (similarity >= minSimilarity && (current === undefined || similarity > current.similarity))
        best.set(entry.label, { bankEntry: entry.id, similarity: Math.round(similarity * 1e6) / 1e6 });
    }
  }
  return results.map((result) => {
    const match = best.get(result.labelId);
    return match === undefined ? result : { ...result, bankMatch: match };
  });
}
