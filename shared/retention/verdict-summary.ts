import type { Verdict } from '../policy/index.ts';

/** What is kept of a verdict beside a retained embedding: enough to tell whether a re-score changed it. */
export type VerdictSummary = {
  policy: { id: string; version: number };
  action: Verdict['action'];
  flagged: boolean;
  /** Ids of the labels that triggered, in policy order. */
  triggered: string[];
};

export function summarizeVerdict(policy: VerdictSummary['policy'], verdict: Verdict): VerdictSummary {
  return {
    policy,
    action: verdict.action,
    flagged: verdict.flagged,
    triggered: verdict.labels.filter((label) => label.triggered).map((label) => label.id),
  };
}

/** Same action and the same triggered labels: a consumer acting on the verdict would do the same. */
export function isSameOutcome(a: VerdictSummary, b: VerdictSummary): boolean {
  return a.action === b.action && a.triggered.join('\u0000') === b.triggered.join('\u0000');
}
