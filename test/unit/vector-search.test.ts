import { describe, expect, it } from 'vitest';
import { type BankEntry, searchMatrix, TopK } from '../../shared/retention/index.ts';
import { applyBankMatches } from '../../workers/inference/known-bad-matching.ts';

describe('TopK', () => {
  it('keeps the k best candidates, best first, whatever the order they arrive in', () => {
    const top = new TopK(3);
    for (const [id, score] of [
      ['a', 0.1],
      ['b', 0.9],
      ['c', 0.5],
      ['d', 0.7],
      ['e', 0.2],
    ] as const)
      top.offer(id, score);
    expect(top.hits()).toEqual([
      { id: 'b', score: 0.9 },
      { id: 'd', score: 0.7 },
      { id: 'c', score: 0.5 },
    ]);
  });
});

describe('searchMatrix', () => {
  it('ranks the rows of a matrix by dot product with the query', () => {
    const matrix = Float32Array.of(1, 0, 0, 1, Math.SQRT1_2, Math.SQRT1_2);
    const top = new TopK(2);
    searchMatrix(Float32Array.of(1, 0), matrix, (row) => `row${row}`, top);
    expect(top.hits().map((hit) => hit.id)).toEqual(['row0', 'row2']);
    expect(top.hits()[1]!.score).toBeCloseTo(Math.SQRT1_2, 6);
  });
});

describe('applyBankMatches', () => {
  const entry = (id: string, label: string, embedding: number[], model = 'm'): BankEntry => ({
    id,
    policyId: 'p',
    label,
    model,
    createdAt: '2026-01-01T00:00:00Z',
    embedding: Float32Array.from(embedding),
  });
  const results = [
    { labelId: 'bad', score: 0.1, prompt: 'x' },
    { labelId: 'other', score: 0.2, prompt: 'y' },
  ];
  const frames = Float32Array.of(0, 1, 1, 0);

  it('marks the label of the closest entry within the distance, checking every frame', () => {
    const entries = [
      entry('e1', 'bad', [0.995, 0.0999]),
      entry('e2', 'bad', [1, 0]),
      entry('e3', 'other', [-1, 0]),
    ];
    const matched = applyBankMatches(results, frames, 2, { entries, modelId: 'm', maxCosineDistance: 0.05 });
    expect(matched[0]!.bankMatch).toEqual({ bankEntry: 'e2', similarity: 1 });
    expect(matched[1]!.bankMatch).toBeUndefined();
  });

  it('ignores entries of another model or beyond the distance', () => {
    const entries = [entry('e1', 'bad', [1, 0], 'other-model'), entry('e2', 'bad', [0.8, 0.6])];
    const matched = applyBankMatches(results, frames, 2, { entries, modelId: 'm', maxCosineDistance: 0.1 });
    expect(matched.every((result) => result.bankMatch === undefined)).toBe(true);
  });
});
