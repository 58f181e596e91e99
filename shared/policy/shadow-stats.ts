import type { Cluster, Redis } from 'ioredis';
import type { Verdict } from './decide-verdict.ts';
import type { PolicyAction } from './policy-schema.ts';
import { checkPolicyId } from './policy-store.ts';

// Shadow mode's tally: for each moderation scored by both the live policy and a shadow candidate,
// whether their actions agreed and which labels flipped. Counters live in one Redis hash per candidate
// version (`<prefix>:policy-shadow:<tenant>:<id>:<version>`), so a summary is one HGETALL however much
// traffic went by. Workers count at least once per moderation; a marker per moderation id makes a
// redelivered job count once.

export type LabelFlip = { label: string; to: 'triggered' | 'cleared' };

export type VerdictComparison = { isAgreed: boolean; flips: LabelFlip[] };

export type ShadowSummary = {
  shadowVersion: number;
  /** Moderations submitted while this candidate ran in shadow (shadow errors included). */
  count: number;
  /** How many got the same action from both versions. */
  agreed: number;
  /** agreed ÷ (count − errors); null before the first comparison. */
  agreementRate: number | null;
  /** Moderations whose shadow scoring failed (the live verdict was unaffected). */
  errors: number;
  /** Counts by `<live action>-><shadow action>`, agreements included. */
  actions: Record<string, number>;
  /** Per label: how often the shadow triggered it where the live did not, and the reverse. */
  flips: Record<string, { triggered: number; cleared: number }>;
};

/** Labels missing from one verdict (added or removed by the candidate) count as not triggered there. */
export function compareVerdicts(live: Verdict, shadow: Verdict): VerdictComparison {
  const triggered = (verdict: Verdict) =>
    new Set(verdict.labels.filter((label) => label.triggered).map((label) => label.id));
  const [before, after] = [triggered(live), triggered(shadow)];
  const ids = [...new Set([...live.labels, ...shadow.labels].map((label) => label.id))];
  const flips = ids.flatMap((label): LabelFlip[] => {
    if (before.has(label) === after.has(label)) return [];
    return [{ label, to: after.has(label) ? 'triggered' : 'cleared' }];
  });
  return { isAgreed: live.action === shadow.action, flips };
}

// KEYS: stats hash, counted marker. ARGV: marker TTL, then the fields to increment.
const recordScript = `
if not redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[1]) then return 0 end
for i = 2, #ARGV do redis.call('HINCRBY', KEYS[1], ARGV[i], 1) end
return 1
`;

export type ShadowOutcome = {
  tenant: string;
  policyId: string;
  shadowVersion: number;
  moderationId: string;
  live: Verdict;
  /** Undefined when the shadow scoring failed. */
  shadow: Verdict | undefined;
};

export type ShadowStatsOptions = {
  redis: Redis | Cluster;
  prefix: string;
  /** How long a moderation's "already counted" marker lives; covers any redelivery. Default 7 days. */
  countedTtlSeconds?: number;
};

export class ShadowStats {
  readonly #redis: Redis | Cluster;
  readonly #prefix: string;
  readonly #countedTtlSeconds: number;

  constructor(options: ShadowStatsOptions) {
    this.#redis = options.redis;
    this.#prefix = options.prefix;
    this.#countedTtlSeconds = options.countedTtlSeconds ?? 7 * 86_400;
  }

  statsKey(tenant: string, policyId: string, shadowVersion: number): string {
    return `${this.#prefix}:policy-shadow:${tenant}:${checkPolicyId(policyId)}:${shadowVersion}`;
  }

  /** Counts one moderation; false when it was counted before (a redelivered job). */
  async record(outcome: ShadowOutcome): Promise<boolean> {
    const fields = ['count'];
    if (outcome.shadow === undefined) fields.push('errors');
    else {
      const comparison = compareVerdicts(outcome.live, outcome.shadow);
      if (comparison.isAgreed) fields.push('agreed');
      fields.push(`action:${outcome.live.action}:${outcome.shadow.action}`);
      for (const flip of comparison.flips) fields.push(`flip:${flip.label}:${flip.to}`);
    }
    const counted = await this.#redis.eval(
      recordScript,
      2,
      this.statsKey(outcome.tenant, outcome.policyId, outcome.shadowVersion),
      `${this.#prefix}:policy-shadow-counted:${outcome.moderationId}`,
      String(this.#countedTtlSeconds),
      ...fields,
    );
    return counted === 1;
  }

  async summary(tenant: string, policyId: string, shadowVersion: number): Promise<ShadowSummary> {
    const hash = await this.#redis.hgetall(this.statsKey(tenant, policyId, shadowVersion));
    return summarize(shadowVersion, hash);
  }
}

function summarize(shadowVersion: number, hash: Record<string, string>): ShadowSummary {
  const count = Number(hash.count ?? 0);
  const agreed = Number(hash.agreed ?? 0);
  const errors = Number(hash.errors ?? 0);
  const actions: Record<string, number> = {};
  const flips: ShadowSummary['flips'] = {};
  for (const [field, value] of Object.entries(hash)) {
    const [kind, first, second] = field.split(':');
    if (kind === 'action') actions[`${first as PolicyAction}->${second as PolicyAction}`] = Number(value);
    if (kind === 'flip' && first !== undefined && (second === 'triggered' || second === 'cleared')) {
      flips[first] ??= { triggered: 0, cleared: 0 };
      flips[first][second] = Number(value);
    }
  }
  return {
    shadowVersion,
    count,
    agreed,
    agreementRate: count - errors > 0 ? agreed / (count - errors) : null,
    errors,
    actions,
    flips,
  };
}
