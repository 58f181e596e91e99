import { describe, expect, it } from 'vitest';
import { validatePolicy } from '../../shared/policy/index.ts';
import { policyTexts, preparePolicy, scorePolicy } from '../../workers/inference/policy-scoring.ts';

// Three orthogonal directions in 3-D stand for three concepts; texts map onto them by hand.
const direction: Record<string, number[]> = {
  gun: [1, 0, 0],
  rifle: [0.8, 0.6, 0],
  toy: [0, 1, 0],
  cat: [0, 0, 1],
  'toy gun': [0.6, 0.8, 0],
  'water pistol': [0, 0.8, 0.6],
};

function embed(texts: string[]): Float32Array {
  return Float32Array.from(texts.flatMap((text) => direction[text.replace('a photo of ', '')] ?? [0, 0, 0]));
}

const softmaxPolicy = validatePolicy({
  labels: [
    { id: 'weapons', prompts: ['gun', 'rifle'], threshold: 0.5, action: 'block' },
    { id: 'toys', prompts: ['toy'], threshold: 0.5, action: 'review' },
  ],
  baseline: ['cat'],
});

describe('policy scoring', () => {
  it('lists label prompts then baseline, each filled into every template', () => {
    const withTemplates = validatePolicy({ ...softmaxPolicy, templates: ['{}', 'a photo of {}'] });
    expect(policyTexts(withTemplates)).toEqual([
      'gun', 'a photo of gun', 'rifle', 'a photo of rifle', 'toy', 'a photo of toy', 'cat', 'a photo of cat',
    ]); // biome-ignore format: one text per template reads best flat
  });

  it('sums a label’s prompt probabilities in softmax mode and names the best prompt as evidence', () => {
    const prepared = preparePolicy(softmaxPolicy, embed(policyTexts(softmaxPolicy)), 3);
    const image = Float32Array.from([1, 0, 0]);
    const [weapons, toys] = scorePolicy(prepared, image, [0], 10);
    // logits: gun 10, rifle 8, toy 0, cat 0 → softmax over the four classes.
    const z = Math.exp(10) + Math.exp(8) + 2;
    expect(weapons?.score).toBeCloseTo((Math.exp(10) + Math.exp(8)) / z, 6);
    expect(weapons?.prompt).toBe('gun');
    expect(toys?.score).toBeCloseTo(1 / z, 6);
    expect(weapons?.frame).toBeUndefined();
  });

  it('scores labels independently against the baseline alone', () => {
    const independent = validatePolicy({ ...softmaxPolicy, scoring: 'independent' });
    const prepared = preparePolicy(independent, embed(policyTexts(independent)), 3);
    const image = Float32Array.from([0.6, 0.8, 0]);
    const [weapons, toys] = scorePolicy(prepared, image, [0], 10);
    // weapons: best prompt rifle (cos 0.96) vs cat (0); toys: toy (0.8) vs cat (0).
    expect(weapons?.score).toBeCloseTo(1 / (1 + Math.exp(-9.6)), 6);
    expect(weapons?.prompt).toBe('rifle');
    expect(toys?.score).toBeCloseTo(1 / (1 + Math.exp(-8)), 6);
  });

  it('uses the clamped raw cosine when an independent policy has no baseline', () => {
    const bare = validatePolicy({ labels: softmaxPolicy.labels, scoring: 'independent' });
    const prepared = preparePolicy(bare, embed(policyTexts(bare)), 3);
    const [weapons, toys] = scorePolicy(prepared, Float32Array.from([0, 0, 1]), [0], 100);
    expect(weapons?.score).toBe(0);
    expect(toys?.score).toBe(0);
  });

  it('keeps, per label, the frame of an animation that scored highest', () => {
    const prepared = preparePolicy(softmaxPolicy, embed(policyTexts(softmaxPolicy)), 3);
    const frames = Float32Array.from([0, 0, 1, 0, 0, 1, 1, 0, 0]);
    const [weapons] = scorePolicy(prepared, frames, [0, 5, 9], 10);
    expect(weapons?.frame).toBe(9);
    expect(weapons?.score).toBeGreaterThan(0.9);
  });
});

describe('policy scoring with exclude prompts', () => {
  const withExcludes = validatePolicy({
    ...softmaxPolicy,
    labels: [{ ...softmaxPolicy.labels[0]!, exclude: ['toy gun', 'water pistol'] }, softmaxPolicy.labels[1]!],
  });
  const prepare = (document = withExcludes) => preparePolicy(document, embed(policyTexts(document)), 3);

  it('embeds exclude prompts after the label prompts and the baseline', () => {
    expect(policyTexts(withExcludes)).toEqual(['gun', 'rifle', 'toy', 'cat', 'toy gun', 'water pistol']);
  });

  it('suppresses a label when an exclude matches the image better than its best prompt', () => {
    const [weapons, toys] = scorePolicy(prepare(), Float32Array.from([0.6, 0.8, 0]), [0], 10);
    // cos(toy gun) = 1 beats cos(rifle) = 0.96: suppressed; the toys label has no excludes.
    expect(weapons).toMatchObject({ labelId: 'weapons', prompt: 'rifle', suppressedBy: 'toy gun' });
    expect(toys?.suppressedBy).toBeUndefined();
  });

  it('leaves the label alone when its own prompt matches better than every exclude', () => {
    const [weapons] = scorePolicy(prepare(), Float32Array.from([1, 0, 0]), [0], 10);
    expect(weapons?.prompt).toBe('gun');
    expect(weapons?.suppressedBy).toBeUndefined();
  });

  it('never moves a score: excludes stay out of the softmax', () => {
    const image = Float32Array.from([0.6, 0.8, 0]);
    const plain = scorePolicy(
      preparePolicy(softmaxPolicy, embed(policyTexts(softmaxPolicy)), 3),
      image,
      [0],
      10,
    );
    const excluded = scorePolicy(prepare(), image, [0], 10);
    expect(excluded.map((result) => result.score)).toEqual(plain.map((result) => result.score));
  });

  it('reports the frame where the label triggers over a higher-scoring suppressed frame', () => {
    // Frame 0: a toy gun (weapons scores highest there but is suppressed); frame 7: a gun beside a cat.
    const [toyGun, gunAndCat] = [
      [0.6, 0.8, 0],
      [0.7, 0, 0.714],
    ];
    const [suppressed] = scorePolicy(prepare(), Float32Array.from(toyGun), [0], 10);
    const [weapons] = scorePolicy(prepare(), Float32Array.from([...toyGun, ...gunAndCat]), [0, 7], 10);
    expect(weapons).toMatchObject({ frame: 7, prompt: 'gun' });
    expect(weapons?.suppressedBy).toBeUndefined();
    expect(weapons?.score).toBeGreaterThanOrEqual(0.5);
    expect(weapons!.score).toBeLessThan(suppressed!.score);
  });

  it('reports the best suppressed frame when the label triggers nowhere', () => {
    const frames = Float32Array.from([0, 0, 1, 0.6, 0.8, 0]);
    const [weapons] = scorePolicy(prepare(), frames, [0, 3], 10);
    expect(weapons).toMatchObject({ frame: 3, suppressedBy: 'toy gun' });
  });
});
