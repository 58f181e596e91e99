import type { Cluster, Redis } from 'ioredis';
import type { Logger } from '../../shared/logger/index.ts';
import { parsePolicyChangeMessage, policyChangedChannel } from '../../shared/policy/index.ts';
import type { PreparedPolicies } from './prepared-policies.ts';

// Hot reload: every worker listens on the policy change channel and prepares each new version (live,
// rolled back, candidate or shadow) as soon as it is written, so the first image scored against it
// pays no text-encoder call. Only texts that no earlier version used miss the shared Redis cache.
// Correctness never depends on this: the API resolves the live version at submit and a worker
// prepares any version on first use; a message lost while Redis reconnects only costs that first use.

export type PolicyPrewarmOptions = {
  /** A dedicated connection: once subscribed it can run no other command. */
  subscriber: Redis | Cluster;
  prefix: string;
  policies: PreparedPolicies;
  logger: Logger;
};

export async function startPolicyPrewarm(options: PolicyPrewarmOptions): Promise<{ stop(): Promise<void> }> {
  const { subscriber, policies, logger } = options;
  const channel = policyChangedChannel(options.prefix);
  const onMessage = (received: string, text: string) => {
    if (received !== channel) return;
    const change = parsePolicyChangeMessage(text);
    if (change === undefined || change.deleted || change.event === 'shadow-clear') return;
    const startedAt = performance.now();
    policies.get(change.tenant, change.id, change.version).then(
      () =>
        logger.debug({ ...change, ms: Math.round(performance.now() - startedAt) }, 'policy version prepared'),
      (error: unknown) => logger.warn({ ...change, err: error }, 'could not prepare a policy version ahead'),
    );
  };
  subscriber.on('message', onMessage);
  await subscriber.subscribe(channel);
  return {
    async stop() {
      subscriber.off('message', onMessage);
      await subscriber.unsubscribe(channel).catch(() => undefined);
    },
  };
}
