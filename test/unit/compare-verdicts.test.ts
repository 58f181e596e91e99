import { describe, expect, it } from 'vitest';
import { compareVerdicts, type Verdict, type VerdictLabel } from '../../shared/policy/index.ts';

function verdict(action: Verdict['action'], triggered: Record<string, boolean>): Verdict {
  const labels = Object.entries(triggered).map(
    ([id, isTriggered]): VerdictLabel => ({
      id,
      score: isTriggered ? 0.9 : 0.1,
      threshold: 0.5,
      triggered: isTriggered,
      action: 'block',
      evidence: { prompt: id },
    }),
  );
  return { action, flagged: action !== 'allow', labels };
}

describe('compareVerdicts', () => {
  it('agrees when both verdicts take the same action and flip no label', () => {
    const live = verdict('block', { weapons: true, drugs: false });
    expect(compareVerdicts(live, structuredClone(live))).toEqual({ isAgreed: true, flips: [] });
  });

  it('lists the labels the candidate triggers or clears, and disagrees on a changed action', () => {
    const live = verdict('block', { weapons: true, drugs: false });
    const shadow = verdict('review', { weapons: false, drugs: true });
    expect(compareVerdicts(live, shadow)).toEqual({
      isAgreed: false,
      flips: [
        { label: 'weapons', to: 'cleared' },
        { label: 'drugs', to: 'triggered' },
      ],
    });
  });

  it('counts a label only one version has as untriggered in the other', () => {
    const live = verdict('block', { weapons: true });
    const shadow = verdict('block', { weapons: true, gore: true, hate: false });
    expect(compareVerdicts(live, shadow)).toEqual({
      isAgreed: true,
      flips: [{ label: 'gore', to: 'triggered' }],
    });
    expect(compareVerdicts(shadow, live).flips).toEqual([{ label: 'gore', to: 'cleared' }]);
  });
});
