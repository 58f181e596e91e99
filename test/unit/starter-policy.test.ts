import { describe, expect, it } from 'vitest';
import { DEFAULT_TOKENIZER_DIR, loadClipTokenizer } from '../../shared/clip/index.ts';
import { maxPromptTokens, starterPolicy } from '../../shared/policy/index.ts';

// The starter policy as shipped: valid with the real CLIP tokenizer, covering the categories the README
// promises, with look-alike excludes and documented starting thresholds, and honest about calibration.

const requiredLabels = [
  'sexual-content',
  'nudity',
  'violence-gore',
  'weapons',
  'drugs',
  'self-harm',
  'hate-symbols',
];

describe('starter policy', async () => {
  const tokenizer = await loadClipTokenizer(DEFAULT_TOKENIZER_DIR);
  const countTokens = (text: string) => tokenizer.countTokens(text);
  const policy = starterPolicy({ countTokens });

  it('fits every prompt, exclude and baseline text, expanded by every template, in 77 tokens', () => {
    const texts = [
      ...policy.labels.flatMap((label) => [...label.prompts, ...(label.exclude ?? [])]),
      ...policy.baseline,
    ];
    const expanded = texts.flatMap((text) =>
      (policy.templates ?? ['{}']).map((t) => t.replaceAll('{}', text)),
    );
    expect(expanded.length).toBeGreaterThan(100);
    const longest = Math.max(...expanded.map(countTokens));
    expect(longest).toBeLessThanOrEqual(maxPromptTokens);
  });

  it('covers every required category with prompts, excludes and a documented threshold', () => {
    expect(policy.labels.map((label) => label.id)).toEqual(expect.arrayContaining(requiredLabels));
    for (const label of policy.labels) {
      expect(label.prompts.length, label.id).toBeGreaterThanOrEqual(3);
      expect(label.exclude?.length ?? 0, label.id).toBeGreaterThanOrEqual(2);
      expect(label.description, label.id).toMatch(new RegExp(`threshold ${label.threshold}`));
    }
  });

  it('excludes the look-alikes admins expect: toy guns, museum statues, medical imagery', () => {
    const excludesOf = (id: string) => policy.labels.find((label) => label.id === id)?.exclude ?? [];
    expect(excludesOf('weapons')).toContain('a toy gun');
    expect(excludesOf('nudity').some((text) => /statue/.test(text))).toBe(true);
    expect(excludesOf('violence-gore').some((text) => /surgical|medical/.test(text))).toBe(true);
  });

  it('says it is uncalibrated, with a neutral baseline and templates', () => {
    expect(policy.calibrated).toBe(false);
    expect(policy.description).toMatch(/calibrate/);
    expect(policy.baseline.length).toBeGreaterThanOrEqual(5);
    expect(policy.templates?.length).toBeGreaterThanOrEqual(1);
  });
});
