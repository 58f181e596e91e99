import type { Queue } from 'bullmq';
import type { Config } from '../../shared/config/index.ts';
import type { Logger } from '../../shared/logger/index.ts';
import type { Registry } from '../../shared/metrics/index.ts';
import type { HostLookup } from '../../shared/net/index.ts';
import { observeQueueDepth, openCatalogQueues } from '../../shared/queue/index.ts';
import {
  assertRedisIsSafe,
  openRedis,
  type RedisConnection,
  type RedisRole,
  type ResolvedRedis,
  redactRedisUrl,
  resolveRedis,
} from '../../shared/redis/index.ts';
import { KnownBadBank, RetainedEmbeddings, TenantSettingsStore } from '../../shared/retention/index.ts';
import type { Component, Lifecycle, ReadinessCheck } from '../../shared/runtime/index.ts';
import { createWebhookServices, type WebhookServices } from '../../shared/webhooks/index.ts';

// What every role of `clipmod serve` builds on: the serve context, this process's Redis, the queues
// of the catalog and the webhook services, and the small pieces more than one role wires in.

export const roles = ['api', 'inference', 'webhooks'] as const;
export type Role = (typeof roles)[number];

export type ServeContext = {
  config: Config;
  logger: Logger;
  lifecycle: Lifecycle;
  roles: readonly Role[];
  /** DNS for outbound URLs (image fetches, webhook URLs and sends); injected by SSRF tests only. */
  lookup?: HostLookup;
};

export type Shared = ServeContext & {
  registry: Registry;
  redis: RedisComponent;
  checks: ReadinessCheck[];
  /** Every queue of the catalog, for depth metrics and the admin board (after start). */
  queues: Queue[];
  /** Webhook stores, queue and dispatcher: the API, the inference finish hook and the webhook worker share them. */
  webhooks: WebhookServicesComponent;
};
export type RedisComponent = Component & {
  client(): RedisConnection;
  url(): string;
  connect(role: RedisRole, name: string): Promise<RedisConnection>;
  /** Every connection this process opened, by name (Redis metrics). */
  connections(): ReadonlyMap<string, RedisConnection>;
};

/**
 * Redis for this process: resolved (maybe embedded), connected, checked for noeviction/AOF. REDIS_URL's
 * scheme picks standalone, Sentinel or Cluster; every connection below comes from openRedis.
 */
export function redisComponent({ config, logger }: ServeContext): RedisComponent {
  let resolved: ResolvedRedis | undefined;
  let client: RedisConnection | undefined;
  const connections = new Map<string, RedisConnection>();
  return {
    name: 'redis',
    client: () => client!,
    url: () => resolved!.url,
    connections: () => connections,
    async connect(role, name) {
      const connection = await openRedis(resolved!.url, role, name);
      connections.set(connections.has(name) ? `${name}-${connections.size}` : name, connection);
      return connection;
    },
    async start() {
      resolved = await resolveRedis({ url: config.REDIS_URL, dataDir: `${config.CLIPMOD_DATA_DIR}/redis` });
      logger.info({ redis: redactRedisUrl(resolved.url), source: resolved.source }, 'using Redis');
      client = await openRedis(resolved.url, 'producer', 'main');
      connections.set('main', client);
      await assertRedisIsSafe(client, { requireAof: config.CLIPMOD_REQUIRE_AOF });
    },
    async stop() {
      for (const connection of connections.values()) connection.disconnect();
      await resolved?.embedded?.stop();
    },
  };
}

export function imageLimits(config: Config) {
  return { maxPixels: config.CLIPMOD_MAX_IMAGE_PIXELS };
}

/** Tenant settings, retained embeddings and the known-bad bank: the API and the inference worker share them. */
export function retentionStores(redis: RedisConnection, prefix: string) {
  return {
    settings: new TenantSettingsStore({ redis, prefix }),
    bank: new KnownBadBank({ redis, prefix }),
    retained: new RetainedEmbeddings({ redis, prefix }),
  };
}

/** Every queue of the catalog, opened once per process: depth on every /metrics, the admin board. */
export function catalogQueuesComponent(shared: Shared): Component {
  return {
    name: 'catalog-queues',
    async start() {
      shared.queues.push(...openCatalogQueues(shared.redis.client(), shared.config.CLIPMOD_REDIS_PREFIX));
      observeQueueDepth(shared.registry, shared.queues);
    },
    async stop() {
      await Promise.all(shared.queues.map((queue) => queue.close()));
    },
  };
}

export type WebhookServicesComponent = Component & { services(): WebhookServices };

export function webhookServicesComponent(config: Config, redis: RedisComponent): WebhookServicesComponent {
  let services: WebhookServices | undefined;
  return {
    name: 'webhook-services',
    services: () => services!,
    async start() {
      services = createWebhookServices({
        redis: redis.client(),
        prefix: config.CLIPMOD_REDIS_PREFIX,
        sealingKey: config.CLIPMOD_WEBHOOK_SECRET_KEY,
        retentionSeconds: config.CLIPMOD_WEBHOOK_RETENTION_SECONDS,
      });
    },
    async stop() {
      await services?.close();
    },
  };
}

export const lookupOf = (context: ServeContext) => (context.lookup ? { lookup: context.lookup } : {});
