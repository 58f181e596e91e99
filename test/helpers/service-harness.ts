import { randomBytes } from 'node:crypto';
import type { Writable } from 'node:stream';
import type { Express } from 'express';
import { Redis } from 'ioredis';
import { composeRoles, type Role } from '../../services/cli/serve-roles.ts';
import { loadConfig } from '../../shared/config/index.ts';
import { createLogger } from '../../shared/logger/index.ts';
import type { HostLookup } from '../../shared/net/index.ts';
import { Lifecycle } from '../../shared/runtime/index.ts';

export type ServiceHarness = {
  baseUrl: string;
  adminKey: string;
  prefix: string;
  /**
   * The suite's Redis (process.env.REDIS_URL), cleaned of `prefix` by stop(). A harness given its own
   * REDIS_URL in `env` (chaos deployments, Sentinel, Cluster) must open its own connection to that one.
   */
  redis: Redis;
  /** Where this process's Prometheus metrics are served: the API, or the probe server of worker roles. */
  metricsUrl: string;
  /** The API's express app (undefined without the api role): its router stack is the route table. */
  app: Express | undefined;
  /** fetch against the service with the admin key unless headers say otherwise. */
  request(path: string, init?: RequestInit): Promise<Response>;
  stop(): Promise<void>;
};

/**
 * The real service in this process — the same composition as `clipmod serve` — on a free loopback
 * port, against the test Redis under a unique key prefix that stop() deletes.
 */
export async function startService(
  options: {
    env?: Record<string, string>;
    roles?: Role[];
    /** Share another harness's prefix to run the roles of one deployment as separate "processes". */
    prefix?: string;
    /** Receives the JSON log lines (at env LOG_LEVEL, error by default: test output stays readable) instead of stdout. */
    logDestination?: Writable;
    /** DNS for the service's outbound URLs (SSRF tests inject names that resolve where they choose). */
    lookup?: HostLookup;
  } = {},
): Promise<ServiceHarness> {
  const prefix = options.prefix ?? `{clipmod-test-${randomBytes(4).toString('hex')}}`;
  const adminKey = `admin-${randomBytes(12).toString('hex')}`;
  const config = loadConfig({
    REDIS_URL: process.env.REDIS_URL,
    PORT: '0',
    CLIPMOD_REDIS_PREFIX: prefix,
    CLIPMOD_ADMIN_KEY: adminKey,
    LOG_LEVEL: 'error',
    CLIPMOD_RATE_LIMIT_PER_MINUTE: '0',
    ...options.env,
  });
  const logger = createLogger({
    level: config.LOG_LEVEL,
    name: 'clipmod-test',
    ...(options.logDestination ? { destination: options.logDestination } : {}),
  });
  const lifecycle = new Lifecycle({ stopTimeoutMs: 10_000, logger });
  const composed = composeRoles({
    config,
    logger,
    lifecycle,
    roles: options.roles ?? ['api', 'inference'],
    ...(options.lookup ? { lookup: options.lookup } : {}),
  });
  await lifecycle.start();
  const baseUrl = `http://127.0.0.1:${composed.apiPort()}`;
  const metricsUrl = composed.apiPort()
    ? `${baseUrl}/metrics`
    : `http://127.0.0.1:${composed.probePort()}/metrics`;
  const redis = new Redis(process.env.REDIS_URL!);
  return {
    baseUrl,
    adminKey,
    prefix,
    redis,
    metricsUrl,
    app: composed.apiApp(),
    request: (path, init = {}) =>
      fetch(`${baseUrl}${path}`, {
        ...init,
        headers: { authorization: `Bearer ${adminKey}`, ...(init.headers as Record<string, string>) },
      }),
    async stop() {
      await lifecycle.stop();
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
        if (keys.length > 0) await redis.del(...keys);
        cursor = next;
      } while (cursor !== '0');
      redis.disconnect();
    },
  };
}
