// Threshold calibration as plain maths. Input: per label, the scores the policy gave to example images
// known to show that label (positives) and to images known not to (negatives: the shared `negatives`
// set plus the other labels' examples). Output: precision and recall at every distinct threshold, and
// the lowest threshold whose precision reaches the target, which is the one that keeps recall highest.

export type LabelledScores = { positives: readonly number[]; negatives: readonly number[] };

export type CurvePoint = {
  threshold: number;
  precision: number;
  recall: number;
  truePositives: number;
  falsePositives: number;
};

export type LabelCalibration = {
  label: string;
  positives: number;
  negatives: number;
  curve: CurvePoint[];
  /** The lowest threshold reaching the target precision; null when none does (or no positives). */
  proposed: CurvePoint | null;
};

/**
 * One point per distinct score, highest threshold first: a label triggers at `score >= threshold`, so
 * each candidate threshold is a score that was seen. Precision with nothing flagged counts as 1.
 */
export function precisionRecallCurve(scores: LabelledScores): CurvePoint[] {
  const marked = [
    ...scores.positives.map((score) => ({ score, isPositive: true })),
    ...scores.negatives.map((score) => ({ score, isPositive: false })),
  ].sort((a, b) => b.score - a.score);
  const total = scores.positives.length;
  const curve: CurvePoint[] = [];
  let [truePositives, falsePositives] = [0, 0];
  marked.forEach((item, index) => {
    if (item.isPositive) truePositives += 1;
    else falsePositives += 1;
    // Emit once all items with this score are counted: equal scores cannot be split by a threshold.
    if (marked[index + 1]?.score === item.score) return;
    const flagged = truePositives + falsePositives;
    curve.push({
      threshold: item.score,
      precision: flagged === 0 ? 1 : truePositives / flagged,
      recall: total === 0 ? 0 : truePositives / total,
      truePositives,
      falsePositives,
    });
  });
  return curve;
}

/** The lowest-threshold point (highest recall) whose precision is at least `targetPrecision`. */
export function proposeThreshold(curve: readonly CurvePoint[], targetPrecision: number): CurvePoint | null {
  let best: CurvePoint | null = null;
  for (const point of curve) {
    if (point.truePositives > 0 && point.precision >= targetPrecision) best = point;
  }
  return best;
}

/**
 * Per label: `scoresByImage` holds each example's label scores and the label it was filed under
 * (`negativesLabel` for the shared negatives). An example of another label counts as a negative.
 */
export function calibrateLabels(
  labels: readonly string[],
  examples: readonly { filedUnder: string; scores: Readonly<Record<string, number>> }[],
  targetPrecision: number,
): LabelCalibration[] {
  return labels.map((label) => {
    const positives: number[] = [];
    const negatives: number[] = [];
    for (const example of examples) {
      const score = example.scores[label];
      if (score === undefined) continue;
      (example.filedUnder === label ? positives : negatives).push(score);
    }
    const curve = precisionRecallCurve({ positives, negatives });
    return {
      label,
      positives: positives.length,
      negatives: negatives.length,
      curve,
      proposed: proposeThreshold(curve, targetPrecision),
    };
  });
}
