import type { Cluster, Redis } from 'ioredis';
import type { Logger } from '../../shared/logger/index.ts';
import { decideVerdict, parsePolicyChangeMessage, policyChangedChannel } from '../../shared/policy/index.ts';
import {
  isSameOutcome,
  type KnownBadBank,
  type RetainedEmbeddings,
  type RetainedMeta,
  summarizeVerdict,
  type TenantSettingsStore,
  type VerdictSummary,
} from '../../shared/retention/index.ts';
import { stableId, type WebhookEvent } from '../../shared/webhooks/index.ts';
import { applyBankMatches } from './known-bad-matching.ts';
import { scorePolicy } from './policy-scoring.ts';
import type { PreparedPolicies } from './prepared-policies.ts';

// Re-scoring on policy change: when a version becomes live (a put or a rollback), the tenant's retained
// embeddings scored under an earlier version of that policy are scored again, text side only (no image
// is decoded; the bank applies as at moderation time). Each verdict whose outcome changed emits a
// `moderation.rescored` event with the old and new summaries. One worker claims each version (SET NX),
// so a fleet re-scores once; event ids are stable per (moderation, version), so a retry sends no duplicate.

export type RescoringDeps = {
  policies: PreparedPolicies;
  retained: RetainedEmbeddings;
  bank: KnownBadBank;
  settings: TenantSettingsStore;
  modelId: string;
  logitScale: number;
  publish(event: WebhookEvent): Promise<unknown>;
};

export type RescoreReport = { scanned: number; rescored: number; changed: number };

export type RescoredEventData = {
  moderationId: string;
  policy: { id: string; previousVersion: number; version: number };
  previous: VerdictSummary;
  current: VerdictSummary;
};

/** Re-scores one tenant's retained embeddings under a policy version; returns what it did. */
export async function rescoreRetained(
  deps: RescoringDeps,
  tenant: string,
  policyId: string,
  version: number,
): Promise<RescoreReport> {
  const prepared = await deps.policies.get(tenant, policyId, version);
  const entries = await deps.bank.entries(tenant, policyId);
  const { maxCosineDistance } = (await deps.settings.get(tenant)).bank;
  const report: RescoreReport = { scanned: 0, rescored: 0, changed: 0 };
  await deps.retained.scan(tenant, async ({ ids, vectors }) => {
    report.scanned += ids.length;
    const metas = await deps.retained.meta(tenant, ids);
    for (const [index, meta] of metas.entries()) {
      const vector = vectors[index]!;
      const isStale = meta?.summary.policy.id === policyId && meta.summary.policy.version !== version;
      if (!isStale || meta.model !== deps.modelId || vector.length !== prepared.dim) continue;
      const scored = scorePolicy(prepared, vector, [0], deps.logitScale);
      const bankOptions = { entries, modelId: deps.modelId, maxCosineDistance };
      const verdict = decideVerdict(
        prepared.document,
        applyBankMatches(scored, vector, prepared.dim, bankOptions),
      );
      const current = summarizeVerdict({ id: policyId, version }, verdict);
      report.rescored += 1;
      if (!isSameOutcome(meta.summary, current)) {
        report.changed += 1;
        await deps.publish(rescoredEvent(tenant, meta, current));
      }
      await deps.retained.updateSummary(tenant, meta, current);
    }
  });
  return report;
}

function rescoredEvent(tenant: string, meta: RetainedMeta, current: VerdictSummary): WebhookEvent {
  const data: RescoredEventData = {
    moderationId: meta.moderationId,
    policy: {
      id: current.policy.id,
      previousVersion: meta.summary.policy.version,
      version: current.policy.version,
    },
    previous: meta.summary,
    current,
  };
  return {
    id: stableId('msg', tenant, meta.moderationId, 'moderation.rescored', String(current.policy.version)),
    tenant,
    type: 'moderation.rescored',
    timestamp: new Date().toISOString(),
    data,
    moderationId: meta.moderationId,
  };
}

/** Listens on the policy change channel and re-scores after every put and rollback (a new live version). */
export async function startPolicyRescoring(
  deps: RescoringDeps & {
    subscriber: Redis | Cluster;
    claimer: Redis | Cluster;
    prefix: string;
    logger: Logger;
  },
): Promise<{ stop(): Promise<void>; idle(): Promise<void> }> {
  const channel = policyChangedChannel(deps.prefix);
  let running: Promise<unknown> = Promise.resolve();
  const onMessage = (received: string, text: string) => {
    const change = received === channel ? parsePolicyChangeMessage(text) : undefined;
    if (change === undefined || change.deleted || (change.event !== 'put' && change.event !== 'rollback'))
      return;
    const { tenant, id, version } = change;
    // Runs one after another: a burst of edits must not start parallel scans of the same embeddings.
    running = running
      .then(async () => {
        const claimKey = `${deps.prefix}:rescore-claim:${tenant}:${id}:${version}`;
        if ((await deps.claimer.set(claimKey, '1', 'EX', 86_400, 'NX')) === null) return;
        const startedAt = performance.now();
        const report = await rescoreRetained(deps, tenant, id, version);
        const ms = Math.round(performance.now() - startedAt);
        deps.logger.info({ tenant, policyId: id, version, ...report, ms }, 'retained embeddings re-scored');
      })
      .catch((error: unknown) =>
        deps.logger.warn({ tenant, policyId: id, version, err: error }, 're-scoring failed'),
      );
  };
  deps.subscriber.on('message', onMessage);
  await deps.subscriber.subscribe(channel);
  return {
    idle: () => running.then(() => undefined),
    async stop() {
      deps.subscriber.off('message', onMessage);
      await deps.subscriber.unsubscribe(channel).catch(() => undefined);
      await running;
    },
  };
}
