import type { Cluster, Redis } from 'ioredis';
import type { ClipModel } from '../../shared/clip/index.ts';
import type { Logger } from '../../shared/logger/index.ts';
import type { KnownBadBank, RetainedEmbeddings, TenantSettingsStore } from '../../shared/retention/index.ts';
import type { WebhookEvent } from '../../shared/webhooks/index.ts';
import { createModerationExtensions, type ModerationExtensions } from './moderation-extensions.ts';
import { startPolicyRescoring } from './policy-rescoring.ts';
import type { PreparedPolicies } from './prepared-policies.ts';

// The inference worker's part in retention, the known-bad bank and re-scoring, started once the model
// is loaded (entries name the model, and re-scoring needs its text tower through PreparedPolicies).

export type BeyondModerationOptions = {
  settings: TenantSettingsStore;
  bank: KnownBadBank;
  retained: RetainedEmbeddings;
  /** Sends `moderation.rescored` events (the webhook dispatcher's publish). */
  publish(event: WebhookEvent): Promise<unknown>;
  /** A dedicated connection for the policy change channel; unset: no re-scoring. */
  rescoreSubscriber?: Redis | Cluster;
  /** Any connection, for the claim that lets one worker of a fleet re-score each version. */
  claimer: Redis | Cluster;
};

export async function startBeyondModeration(
  options: BeyondModerationOptions,
  context: { model: ClipModel; policies: PreparedPolicies; prefix: string; logger: Logger },
): Promise<{ extensions: ModerationExtensions; stop(): Promise<void> }> {
  const { model } = context;
  const shared = {
    settings: options.settings,
    bank: options.bank,
    retained: options.retained,
    modelId: model.modelId,
  };
  const extensions = createModerationExtensions({ ...shared, dim: model.embeddingDim });
  const rescoring =
    options.rescoreSubscriber === undefined
      ? undefined
      : await startPolicyRescoring({
          ...shared,
          policies: context.policies,
          logitScale: model.logitScale,
          publish: options.publish,
          subscriber: options.rescoreSubscriber,
          claimer: options.claimer,
          prefix: context.prefix,
          logger: context.logger,
        });
  return { extensions, stop: async () => rescoring?.stop() };
}
