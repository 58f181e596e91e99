import { ClipmodError } from '../errors/index.ts';
import type { PolicyAction, PolicyDocument } from './policy-schema.ts';

/** What the scorer found for one label: its score and the prompt (and video frame) that scored best. */
export type LabelResult = {
  labelId: string;
  score: number;
  prompt: string;
  frame?: number;
  /** The label's exclude prompt that matched the image better than `prompt`: the label cannot trigger. */
  suppressedBy?: string;
  /** A known-bad bank entry within the tenant's cosine distance: the label triggers whatever its score. */
  bankMatch?: { bankEntry: string; similarity: number };
};

export type VerdictEvidence = {
  prompt: string;
  frame?: number;
  suppressedBy?: string;
  bankEntry?: string;
  similarity?: number;
};

export type VerdictLabel = {
  id: string;
  score: number;
  threshold: number;
  triggered: boolean;
  action: PolicyAction;
  evidence: VerdictEvidence;
};

export type Verdict = {
  action: PolicyAction;
  /** True when a triggered label asks for a block or a review. */
  flagged: boolean;
  /** Every label of the policy, in policy order. */
  labels: VerdictLabel[];
};

const severity: Record<PolicyAction, number> = { allow: 0, review: 1, block: 2 };

/**
 * Applies a policy's thresholds and actions to label scores. A label triggers at `score >= threshold`
 * unless an exclude prompt suppressed it (its score is still reported), and always on a known-bad bank match; the verdict takes the most severe triggered action, else the policy's default.
 * Results must cover exactly the policy's labels: a mismatch means the scorer used another version.
 */
export function decideVerdict(
  policy: Pick<PolicyDocument, 'labels' | 'defaultAction'>,
  results: readonly LabelResult[],
): Verdict {
  const byId = new Map(results.map((result) => [result.labelId, result]));
  const isKnown = (labelId: string) => policy.labels.some((label) => label.id === labelId);
  if (byId.size !== results.length || results.some((result) => !isKnown(result.labelId))) {
    throw new ClipmodError(
      'internal',
      `label results [${describeIds(results)}] do not match the policy's labels`,
    );
  }
  const labels = policy.labels.map((label): VerdictLabel => {
    const result = byId.get(label.id);
    if (result === undefined) throw new ClipmodError('internal', `no score for label "${label.id}"`);
    const evidence: VerdictEvidence = { prompt: result.prompt };
    if (result.frame !== undefined) evidence.frame = result.frame;
    if (result.suppressedBy !== undefined) evidence.suppressedBy = result.suppressedBy;
    if (result.bankMatch !== undefined) Object.assign(evidence, result.bankMatch);
    return {
      id: label.id,
      score: result.score,
      threshold: label.threshold,
      triggered:
        result.bankMatch !== undefined ||
        (result.suppressedBy === undefined && result.score >= label.threshold),
      action: label.action,
      evidence,
    };
  });
  const triggered = labels.filter((label) => label.triggered);
  const action =
    triggered.length === 0
      ? policy.defaultAction
      : triggered.reduce<PolicyAction>(
          (worst, label) => (severity[label.action] > severity[worst] ? label.action : worst),
          'allow',
        );
  const flagged = triggered.some((label) => label.action !== 'allow');
  return { action, flagged, labels };
}

function describeIds(results: readonly LabelResult[]): string {
  return results.map((result) => result.labelId).join(', ');
}
