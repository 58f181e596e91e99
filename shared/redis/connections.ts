import { Redis, type RedisOptions } from 'ioredis';
import { ClipmodError } from '../errors/index.ts';

/**
 * `worker`: blocking BullMQ connections, retry forever (BullMQ requires maxRetriesPerRequest null).
 * `producer`: request paths (API), fail fast while Redis is away so callers answer 503, not hang.
 */
export type RedisRole = 'worker' | 'producer';

export function redisOptionsFor(role: RedisRole): RedisOptions {
  const common: RedisOptions = {
    lazyConnect: true,
    connectTimeout: 5_000,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2_000),
  };
  if (role === 'worker') return { ...common, maxRetriesPerRequest: null, enableOfflineQueue: true };
  return { ...common, maxRetriesPerRequest: 1, enableOfflineQueue: false, commandTimeout: 2_000 };
}

export async function connectRedis(url: string, role: RedisRole, name: string): Promise<Redis> {
  const client = new Redis(url, { ...redisOptionsFor(role), connectionName: `clipmod:${name}` });
  client.on('error', () => {
    // Connection errors surface through commands and readiness; without a listener ioredis
    // would print every reconnect attempt to stderr.
  });
  try {
    await client.connect();
  } catch (error) {
    client.disconnect();
    throw new ClipmodError('unavailable', `cannot connect to Redis for ${name}: ${(error as Error).message}`);
  }
  return client;
}

export type RedisSafetyOptions = { requireAof: boolean };

/** Parse `INFO` text into a map (works on managed Redis where CONFIG is disabled). */
export function parseRedisInfo(info: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of info.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0 && !line.startsWith('#')) fields.set(line.slice(0, colon), line.slice(colon + 1).trim());
  }
  return fields;
}

/** Problems that make a Redis unsafe for queues; empty when it is fine. */
export function redisSafetyProblems(info: Map<string, string>, options: RedisSafetyOptions): string[] {
  const problems: string[] = [];
  const policy = info.get('maxmemory_policy') ?? 'unknown';
  if (policy !== 'noeviction') {
    problems.push(
      `Redis maxmemory-policy is "${policy}"; queues need "noeviction" or accepted jobs can be evicted. ` +
        'Fix: redis-cli CONFIG SET maxmemory-policy noeviction (and set it in redis.conf)',
    );
  }
  if (options.requireAof && info.get('aof_enabled') !== '1') {
    problems.push(
      'Redis AOF persistence is off; accepted jobs would be lost on a crash. ' +
        'Fix: redis-cli CONFIG SET appendonly yes (and appendonly yes in redis.conf)',
    );
  }
  return problems;
}

export async function assertRedisIsSafe(client: Redis, options: RedisSafetyOptions): Promise<void> {
  const info = parseRedisInfo(await client.info());
  const problems = redisSafetyProblems(info, options);
  if (problems.length > 0) throw new ClipmodError('invalid_config', problems.join('; '));
}
