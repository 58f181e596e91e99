import { describe, expect, it } from 'vitest';
import {
  cosineScores,
  ensembleClassEmbeddings,
  expandPrompts,
  fillTemplate,
  logitsFromCosines,
  normalizeRows,
  rankLabels,
  softmax,
  softmaxRows,
  zeroShotProbabilities,
} from '../../shared/clip/zero-shot.ts';

const f32 = (values: number[]) => Float32Array.from(values);

describe('normalizeRows', () => {
  it('scales every row to unit length in place', () => {
    const rows = f32([3, 4, 0, 5]);
    const result = normalizeRows(rows, 2);
    expect(result).toBe(rows);
    expect([...rows]).toEqual([0.6000000238418579, 0.800000011920929, 0, 1]);
  });

  it('leaves an all-zero row at zero instead of dividing by zero', () => {
    expect([...normalizeRows(f32([0, 0, 2, 0]), 2)]).toEqual([0, 0, 1, 0]);
  });
});

describe('prompt templates', () => {
  it('fills every {} with the label', () => {
    expect(fillTemplate('a photo of a {}, a {}.', 'cat')).toBe('a photo of a cat, a cat.');
  });

  it('refuses a template without a placeholder as a bad request', () => {
    expect(() => fillTemplate('a photo', 'cat')).toThrow(
      expect.objectContaining({ name: 'ClipmodError', code: 'bad_request' }),
    );
  });

  it('expands labels × templates label-major', () => {
    expect(expandPrompts(['cat', 'dog'], ['a {}.', 'the {}!'])).toEqual([
      'a cat.',
      'the cat!',
      'a dog.',
      'the dog!',
    ]);
  });
});

describe('ensembleClassEmbeddings', () => {
  it('normalises each prompt before averaging, then renormalises the mean', () => {
    // Label A: prompts [2,0] and [0,3] -> unit [1,0],[0,1] -> mean [.5,.5] -> [1/√2, 1/√2].
    // Averaging before normalising would give [1,1.5] -> [0.5547, 0.8321] instead.
    // Label B: a single direction twice stays that direction.
    const prompts = f32([2, 0, 0, 3, 0, 5, 0, 7]);
    const classes = ensembleClassEmbeddings(prompts, 2, 2);
    expect(classes).toHaveLength(4);
    expect(classes[0]).toBeCloseTo(Math.SQRT1_2, 6);
    expect(classes[1]).toBeCloseTo(Math.SQRT1_2, 6);
    expect([classes[2], classes[3]]).toEqual([0, 1]);
  });

  it('does not modify the prompt embeddings it was given', () => {
    const prompts = f32([2, 0, 0, 3]);
    ensembleClassEmbeddings(prompts, 2, 2);
    expect([...prompts]).toEqual([2, 0, 0, 3]);
  });

  it('refuses prompt rows that do not split into whole template groups', () => {
    expect(() => ensembleClassEmbeddings(f32([1, 0, 0, 1, 1, 1]), 2, 2)).toThrow(RangeError);
  });
});

describe('cosine, logits and softmax', () => {
  it('computes raw cosine similarities for every image × class pair', () => {
    const images = f32([3, 4, -1, 0]);
    const classes = f32([1, 0, 0, 2]);
    expect([...cosineScores(images, classes, 2)].map((value) => Number(value.toFixed(6)))).toEqual([
      0.6, 0.8, -1, 0,
    ]);
  });

  it('scales cosines by the logit scale', () => {
    expect([...logitsFromCosines([0.25, -0.5], 100)]).toEqual([25, -50]);
  });

  it('stays finite for huge logits by subtracting the row maximum', () => {
    expect([...softmax([1000, 1000])]).toEqual([0.5, 0.5]);
    const skewed = softmax([-1000, 0]);
    expect(skewed[1]).toBe(1);
    expect(Number.isNaN(skewed[0])).toBe(false);
  });

  it('normalises each row on its own', () => {
    const rows = softmaxRows([0, 0, Math.log(3), 0], 2);
    expect([...rows].map((value) => Number(value.toFixed(6)))).toEqual([0.5, 0.5, 0.75, 0.25]);
  });

  it('matches a by-hand zero-shot computation', () => {
    // image [3,4] against classes [1,0] and [0,1]: cos = .6 and .8; at scale 2 the logits are 1.2 and 1.6;
    // p0 = 1 / (1 + e^0.4) = 0.401312339887548.
    const probabilities = zeroShotProbabilities(f32([3, 4]), f32([1, 0, 0, 1]), 2, 2);
    expect(probabilities[0]).toBeCloseTo(0.401312339887548, 7);
    expect(probabilities[1]).toBeCloseTo(1 - 0.401312339887548, 7);
  });

  it('sharpens towards the closest class at CLIP scale 100', () => {
    const probabilities = zeroShotProbabilities(f32([1, 0.1]), f32([1, 0, 0, 1]), 2, 100);
    expect(probabilities[0]).toBeGreaterThan(0.99);
  });
});

describe('rankLabels', () => {
  it('sorts labels by score, highest first, keeping ties in input order', () => {
    expect(rankLabels(['a', 'b', 'c', 'd'], [0.1, 0.6, 0.1, 0.2])).toEqual([
      { label: 'b', score: 0.6 },
      { label: 'd', score: 0.2 },
      { label: 'a', score: 0.1 },
      { label: 'c', score: 0.1 },
    ]);
  });

  it('refuses a label list and score list of different lengths', () => {
    expect(() => rankLabels(['a'], [0.5, 0.5])).toThrow(RangeError);
  });
});
