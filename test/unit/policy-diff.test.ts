import { describe, expect, it } from 'vitest';
import { diffPolicies, validatePolicy } from '../../shared/policy/index.ts';

const base = validatePolicy({
  labels: [
    { id: 'weapons', prompts: ['a gun', 'a rifle'], threshold: 0.5, action: 'review' },
    { id: 'drugs', prompts: ['cocaine'], threshold: 0.6, action: 'review' },
  ],
  baseline: ['a cat', 'a dog'],
});

const edit = (changes: Record<string, unknown>) => validatePolicy({ ...base, ...changes });

describe('diffPolicies', () => {
  it('finds nothing between a version and its copy', () => {
    expect(diffPolicies(base, structuredClone(base))).toEqual([]);
  });

  it('lists every label and prompt as added for a new policy', () => {
    expect(diffPolicies(undefined, base)).toEqual([
      { op: 'added', path: 'labels.weapons', value: base.labels[0] },
      { op: 'added', path: 'labels.drugs', value: base.labels[1] },
      { op: 'added', path: 'baseline', value: 'a cat' },
      { op: 'added', path: 'baseline', value: 'a dog' },
    ]);
  });

  it('names changed label fields with their old and new values', () => {
    const labels = [{ ...base.labels[0]!, threshold: 0.7, action: 'block' }, base.labels[1]!];
    expect(diffPolicies(base, edit({ labels }))).toEqual([
      { op: 'changed', path: 'labels.weapons.threshold', from: 0.5, to: 0.7 },
      { op: 'changed', path: 'labels.weapons.action', from: 'review', to: 'block' },
    ]);
  });

  it('reports prompts and excludes as texts added and removed, ignoring their order', () => {
    const weapons = { ...base.labels[0]!, prompts: ['a rifle', 'a pistol'], exclude: ['a toy gun'] };
    expect(diffPolicies(base, edit({ labels: [weapons, base.labels[1]!] }))).toEqual([
      { op: 'removed', path: 'labels.weapons.prompts', value: 'a gun' },
      { op: 'added', path: 'labels.weapons.prompts', value: 'a pistol' },
      { op: 'added', path: 'labels.weapons.exclude', value: 'a toy gun' },
    ]);
  });

  it('reports labels added and removed, matched by id, and a new label order', () => {
    const hate = { id: 'hate', prompts: ['a swastika'], threshold: 0.6, action: 'block' };
    const next = edit({ labels: [hate, base.labels[1]!, { ...base.labels[0]!, description: 'guns' }] });
    expect(diffPolicies(base, next)).toEqual([
      { op: 'added', path: 'labels.hate', value: next.labels[0] },
      { op: 'changed', path: 'labels.weapons.description', from: null, to: 'guns' },
      { op: 'changed', path: 'labels', from: ['weapons', 'drugs'], to: ['drugs', 'weapons'] },
    ]);
    expect(diffPolicies(next, base)).toContainEqual({
      op: 'removed',
      path: 'labels.hate',
      value: next.labels[0],
    });
  });

  it('reports policy-wide settings: scoring, baseline, templates, description, calibrated', () => {
    const next = edit({
      scoring: 'independent',
      baseline: ['a cat'],
      templates: ['a photo of {}.'],
      description: 'v2',
      calibrated: false,
    });
    expect(diffPolicies(base, next)).toEqual([
      { op: 'removed', path: 'baseline', value: 'a dog' },
      { op: 'added', path: 'templates', value: 'a photo of {}.' },
      { op: 'changed', path: 'scoring', from: 'softmax', to: 'independent' },
      { op: 'changed', path: 'description', from: null, to: 'v2' },
      { op: 'changed', path: 'calibrated', from: null, to: false },
    ]);
  });
});
