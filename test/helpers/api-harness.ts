import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Router } from 'express';
import { Redis } from 'ioredis';
import { createApp } from '../../services/api/app.ts';
import { type Auth, createAuth, type Scope } from '../../services/api/auth/index.ts';
import { createLogger, type Logger } from '../../shared/logger/index.ts';
import { Registry } from '../../shared/metrics/index.ts';
import { connectRedis, redisOptionsFor } from '../../shared/redis/index.ts';

// The API as tests meet it: the real express app with the real auth on 127.0.0.1, against the test
// Redis under a prefix of its own, so files run in parallel and close() leaves nothing behind.

export type ApiHarnessContext = { redis: Redis; prefix: string; auth: Auth };

export type ApiHarnessOptions = {
  /** Defaults to REDIS_URL, set by the global test setup. */
  redisUrl?: string;
  /** Start even when Redis does not answer (requests then meet a Redis that is away). */
  allowRedisDown?: boolean;
  /** Mounted after the API key routes; a function receives the harness's Redis, prefix and auth. */
  routers?: readonly Router[] | ((context: ApiHarnessContext) => readonly Router[]);
  /** Per-key limit of `auth.rateLimit` / `auth.modelRouteGuard`; off unless given. */
  rateLimit?: { limitPerMinute: number; burst: number; now?: () => number };
  /** Bootstrap key (CLIPMOD_ADMIN_KEY); a random one by default. */
  adminKey?: string;
  logger?: Logger;
};

export type ApiHarness = ApiHarnessContext & {
  baseUrl: string;
  adminKey: string;
  /** Issues a key straight through the store and returns its secret. */
  issueKey(scopes: readonly Scope[], tenant?: string): Promise<string>;
  close(): Promise<void>;
};

export async function startApiHarness(options: ApiHarnessOptions = {}): Promise<ApiHarness> {
  const redisUrl = options.redisUrl ?? process.env.REDIS_URL;
  if (!redisUrl) throw new Error('REDIS_URL is unset: run through vitest (test/helpers/global-setup.ts)');
  const redis = await connectTestRedis(redisUrl, options.allowRedisDown ?? false);
  const prefix = `{clipmod-test-${randomBytes(6).toString('hex')}}`;
  const adminKey = options.adminKey ?? `admin-${randomBytes(16).toString('hex')}`;
  const auth = createAuth({
    redis,
    prefix,
    adminKey,
    limitPerMinute: options.rateLimit?.limitPerMinute ?? 0,
    burst: options.rateLimit?.burst ?? 1,
    ...(options.rateLimit?.now ? { now: options.rateLimit.now } : {}),
  });
  const context: ApiHarnessContext = { redis, prefix, auth };
  const extra = typeof options.routers === 'function' ? options.routers(context) : (options.routers ?? []);
  const app = createApp({
    logger: options.logger ?? createLogger({ level: 'silent' }),
    registry: new Registry(),
    readiness: async () => ({ status: 'ready', checks: {}, warnings: [] }),
    routers: [auth.router, ...extra],
  });
  const server = await listen(createServer(app));
  const { port } = server.address() as AddressInfo;
  return {
    ...context,
    baseUrl: `http://127.0.0.1:${port}`,
    adminKey,
    issueKey: async (scopes, tenant = 'default') =>
      (await auth.store.create({ tenant, scopes, name: 'test key' }, { keyId: 'test:harness', tenant })).key,
    close: () => closeHarness(server, redis, prefix),
  };
}

/** The producer connection the API uses; with allowRedisDown, one that keeps trying in the background. */
async function connectTestRedis(url: string, allowRedisDown: boolean): Promise<Redis> {
  try {
    return await connectRedis(url, 'producer', 'test-api');
  } catch (error) {
    if (!allowRedisDown) throw error;
    const client = new Redis(url, { ...redisOptionsFor('producer'), connectionName: 'clipmod:test-api' });
    client.on('error', () => {
      // Expected: this client exists to meet a Redis that is away.
    });
    return client;
  }
}

function listen(server: Server): Promise<Server> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

async function closeHarness(server: Server, redis: Redis, prefix: string): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  // fetch keeps connections alive; without this close() would wait for them to time out.
  server.closeAllConnections();
  await closed;
  if (redis.status === 'ready') {
    await deleteKeysWithPrefix(redis, prefix);
    await redis.quit();
  } else {
    redis.disconnect();
  }
}

/** SCAN + DEL of every key under `prefix` (its characters are hex and braces, never glob syntax). */
export async function deleteKeysWithPrefix(redis: Redis, prefix: string): Promise<number> {
  let cursor = '0';
  let deleted = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
    cursor = next;
    if (keys.length > 0) deleted += await redis.del(...keys);
  } while (cursor !== '0');
  return deleted;
}
