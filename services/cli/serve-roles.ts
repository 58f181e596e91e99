import type { Redis } from 'ioredis';
import type { Config } from '../../shared/config/index.ts';
import { type Logger, redactUrl } from '../../shared/logger/index.ts';
import { createRegistry } from '../../shared/metrics/index.ts';
import {
  assertRedisIsSafe,
  connectRedis,
  type ResolvedRedis,
  resolveRedis,
} from '../../shared/redis/index.ts';
import {
  type Component,
  createHttpServerComponent,
  createProbeServer,
  evaluateReadiness,
  type Lifecycle,
  type ReadinessCheck,
} from '../../shared/runtime/index.ts';
import { createApp } from '../api/app.ts';

// The composition root of `clipmod serve`: the only place that wires services and workers together
// (they never import each other).

export const roles = ['api'] as const;
export type Role = (typeof roles)[number];

export type ServeContext = { config: Config; logger: Logger; lifecycle: Lifecycle; roles: readonly Role[] };

/** Redis for this process: resolved (maybe embedded), connected, checked for noeviction/AOF. */
function redisComponent(context: ServeContext) {
  let resolved: ResolvedRedis | undefined;
  let client: Redis | undefined;
  const component: Component & { client(): Redis; url(): string } = {
    name: 'redis',
    client: () => client!,
    url: () => resolved!.url,
    async start() {
      resolved = await resolveRedis({
        url: context.config.REDIS_URL,
        dataDir: `${context.config.CLIPMOD_DATA_DIR}/redis`,
      });
      context.logger.info({ redis: redactUrl(resolved.url), source: resolved.source }, 'using Redis');
      client = await connectRedis(resolved.url, 'producer', 'api');
      await assertRedisIsSafe(client, { requireAof: context.config.CLIPMOD_REQUIRE_AOF });
    },
    async stop() {
      client?.disconnect();
      await resolved?.embedded?.stop();
    },
  };
  return component;
}

export function composeRoles(context: ServeContext): void {
  const { config, logger, lifecycle } = context;
  const registry = createRegistry(context.roles.join('+'));
  const redis = redisComponent(context);
  const checks: ReadinessCheck[] = [
    { name: 'redis', check: async () => ({ ok: (await redis.client().ping()) === 'PONG' }) },
  ];
  const readiness = () => evaluateReadiness(lifecycle.isReady, checks);
  lifecycle.add(redis);

  if (context.roles.includes('api')) {
    const app = createApp({ logger, registry, readiness });
    lifecycle.add(
      createHttpServerComponent({ name: 'api', host: config.HOST, port: config.PORT, handler: app }),
    );
  } else {
    lifecycle.add(
      createProbeServer({
        host: config.HOST,
        port: config.CLIPMOD_PROBE_PORT,
        registry,
        isStarted: () => lifecycle.isReady,
        checks,
      }),
    );
  }
}
