import { describe, expect, it } from 'vitest';
import { calibrateLabels, precisionRecallCurve, proposeThreshold } from '../../shared/retention/index.ts';

describe('precisionRecallCurve', () => {
  it('gives one point per distinct score, highest threshold first', () => {
    const curve = precisionRecallCurve({ positives: [0.9, 0.7, 0.4], negatives: [0.8, 0.2] });
    expect(curve.map((point) => point.threshold)).toEqual([0.9, 0.8, 0.7, 0.4, 0.2]);
    expect(curve[0]).toMatchObject({ precision: 1, recall: 1 / 3, truePositives: 1, falsePositives: 0 });
    expect(curve[1]).toMatchObject({ precision: 0.5, recall: 1 / 3 });
    expect(curve[3]).toMatchObject({ precision: 0.75, recall: 1 });
    expect(curve[4]).toMatchObject({ precision: 0.6, recall: 1 });
  });

  it('never splits equal scores between a positive and a negative', () => {
    const curve = precisionRecallCurve({ positives: [0.5], negatives: [0.5] });
    expect(curve).toEqual([
      { threshold: 0.5, precision: 0.5, recall: 1, truePositives: 1, falsePositives: 1 },
    ]);
  });
});

describe('proposeThreshold', () => {
  const curve = precisionRecallCurve({ positives: [0.9, 0.7, 0.4], negatives: [0.8, 0.2] });

  it('picks the lowest threshold (highest recall) that reaches the target precision', () => {
    expect(proposeThreshold(curve, 0.7)?.threshold).toBe(0.4);
    expect(proposeThreshold(curve, 0.9)?.threshold).toBe(0.9);
  });

  it('proposes nothing when no threshold reaches the target or there are no positives', () => {
    expect(proposeThreshold(precisionRecallCurve({ positives: [0.1], negatives: [0.5] }), 1)).toBeNull();
    expect(proposeThreshold(precisionRecallCurve({ positives: [], negatives: [0.5] }), 0.5)).toBeNull();
  });
});

describe('calibrateLabels', () => {
  it("counts the other labels' examples and the negatives as negatives of each label", () => {
    const examples = [
      { filedUnder: 'nudity', scores: { nudity: 0.9, violence: 0.1 } },
      { filedUnder: 'violence', scores: { nudity: 0.3, violence: 0.8 } },
      { filedUnder: 'negatives', scores: { nudity: 0.2, violence: 0.2 } },
    ];
    const [nudity, violence] = calibrateLabels(['nudity', 'violence'], examples, 1);
    expect(nudity).toMatchObject({
      label: 'nudity',
      positives: 1,
      negatives: 2,
      proposed: { threshold: 0.9 },
    });
    expect(violence).toMatchObject({ positives: 1, negatives: 2, proposed: { threshold: 0.8, recall: 1 } });
  });
});
