import { describe, expect, it } from 'vitest';
import { ClipmodError } from '../../shared/errors/index.ts';
import {
  decideVerdict,
  type LabelResult,
  type PolicyDocument,
  validatePolicy,
} from '../../shared/policy/index.ts';

const policy: PolicyDocument = validatePolicy({
  labels: [
    { id: 'violence', prompts: ['a violent scene', 'a fight'], threshold: 0.6, action: 'block' },
    { id: 'suggestive', prompts: ['a suggestive photo'], threshold: 0.4, action: 'review' },
    { id: 'cartoon', prompts: ['a cartoon'], threshold: 0.5, action: 'allow' },
  ],
  scoring: 'independent',
});

/** Results for every label, with the given scores (policy order). */
function scored(violence: number, suggestive: number, cartoon: number): LabelResult[] {
  return [
    { labelId: 'violence', score: violence, prompt: 'a fight' },
    { labelId: 'suggestive', score: suggestive, prompt: 'a suggestive photo' },
    { labelId: 'cartoon', score: cartoon, prompt: 'a cartoon' },
  ];
}

const triggeredIds = (results: LabelResult[]) =>
  decideVerdict(policy, results)
    .labels.filter((label) => label.triggered)
    .map((label) => label.id);

describe('decideVerdict', () => {
  it('answers the default action, unflagged, when no label triggers', () => {
    const verdict = decideVerdict(policy, scored(0.1, 0.2, 0.3));
    expect(verdict.action).toBe('allow');
    expect(verdict.flagged).toBe(false);
    expect(verdict.labels.every((label) => !label.triggered)).toBe(true);
  });

  it('triggers a label at exactly its threshold and not just below it', () => {
    expect(triggeredIds(scored(0.6, 0, 0))).toEqual(['violence']);
    expect(triggeredIds(scored(0.5999, 0, 0))).toEqual([]);
  });

  it('blocks when a block label triggers, whatever else triggers', () => {
    const verdict = decideVerdict(policy, scored(0.9, 0.9, 0.9));
    expect(verdict).toMatchObject({ action: 'block', flagged: true });
  });

  it('sends to review when the most severe triggered label asks for review', () => {
    const verdict = decideVerdict(policy, scored(0.1, 0.5, 0.9));
    expect(verdict).toMatchObject({ action: 'review', flagged: true });
  });

  it('allows, unflagged, when only allow labels trigger', () => {
    const verdict = decideVerdict(policy, scored(0.1, 0.1, 0.9));
    expect(verdict).toMatchObject({ action: 'allow', flagged: false });
    expect(verdict.labels.find((label) => label.id === 'cartoon')?.triggered).toBe(true);
  });

  it('lists every label in policy order whatever order the results come in', () => {
    const verdict = decideVerdict(policy, scored(0.7, 0.2, 0.1).reverse());
    expect(verdict.labels).toEqual([
      {
        id: 'violence',
        score: 0.7,
        threshold: 0.6,
        triggered: true,
        action: 'block',
        evidence: { prompt: 'a fight' },
      },
      {
        id: 'suggestive',
        score: 0.2,
        threshold: 0.4,
        triggered: false,
        action: 'review',
        evidence: { prompt: 'a suggestive photo' },
      },
      {
        id: 'cartoon',
        score: 0.1,
        threshold: 0.5,
        triggered: false,
        action: 'allow',
        evidence: { prompt: 'a cartoon' },
      },
    ]);
  });

  it('carries the frame that scored best into the evidence, frame 0 included', () => {
    const results = scored(0.8, 0.1, 0.1).map((result, index) => ({ ...result, frame: index * 3 }));
    const verdict = decideVerdict(policy, results);
    expect(verdict.labels.map((label) => label.evidence)).toEqual([
      { prompt: 'a fight', frame: 0 },
      { prompt: 'a suggestive photo', frame: 3 },
      { prompt: 'a cartoon', frame: 6 },
    ]);
  });

  it('never triggers on a NaN score', () => {
    expect(triggeredIds(scored(Number.NaN, 0, 0))).toEqual([]);
  });

  it('triggers a zero-threshold label on any score', () => {
    const always = validatePolicy({
      labels: [{ id: 'all', prompts: ['anything'], threshold: 0, action: 'review' }],
      scoring: 'independent',
    });
    expect(decideVerdict(always, [{ labelId: 'all', score: 0, prompt: 'anything' }])).toMatchObject({
      action: 'review',
      flagged: true,
    });
  });

  it('refuses results that miss a label of the policy', () => {
    const error = catchError(() => decideVerdict(policy, scored(0.1, 0.1, 0.1).slice(0, 2)));
    expect(error).toBeInstanceOf(ClipmodError);
    expect(error.message).toMatch(/cartoon/);
  });

  it('refuses results for a label the policy does not have, or the same label twice', () => {
    const extra = [...scored(0.1, 0.1, 0.1), { labelId: 'nudity', score: 0.9, prompt: 'x' }];
    expect(catchError(() => decideVerdict(policy, extra)).message).toMatch(/nudity/);
    const doubled = [...scored(0.1, 0.1, 0.1), { labelId: 'violence', score: 0.9, prompt: 'x' }];
    expect((catchError(() => decideVerdict(policy, doubled)) as ClipmodError).code).toBe('internal');
  });
});

function catchError(run: () => unknown): Error {
  try {
    run();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected an error');
}

describe('decideVerdict with exclude prompts', () => {
  it('reports a suppressed label’s score but never triggers it, naming the exclude as evidence', () => {
    const results = scored(0.95, 0.1, 0.1);
    results[0] = { ...results[0]!, suppressedBy: 'a toy gun' };
    const verdict = decideVerdict(policy, results);
    expect(verdict.labels[0]).toMatchObject({
      id: 'violence',
      score: 0.95,
      triggered: false,
      evidence: { prompt: 'a fight', suppressedBy: 'a toy gun' },
    });
    expect(verdict.action).toBe('allow');
    expect(verdict.flagged).toBe(false);
  });

  it('leaves suppressedBy out of the evidence of labels no exclude matched', () => {
    const verdict = decideVerdict(policy, scored(0.95, 0.1, 0.1));
    expect(verdict.labels[0]?.evidence).toEqual({ prompt: 'a fight' });
    expect(verdict.action).toBe('block');
  });
});
