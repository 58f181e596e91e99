// Redis for every process: connections with BullMQ's production settings to a standalone, Sentinel
// or Cluster deployment (REDIS_URL's scheme picks), replica acknowledgement, the start-up safety
// guard (noeviction, optional AOF), the embedded redis-server of the quickstart, and Redis health
// metrics. Depends on shared/errors and shared/metrics; keys are prefixed by callers.
import { ClipmodError } from '../errors/index.ts';
import { type EmbeddedRedis, redisAnswers, startEmbeddedRedis } from './embedded-redis.ts';

export {
  assertRedisIsSafe,
  connectRedis,
  openRedis,
  parseRedisInfo,
  type RedisConnection,
  type RedisRole,
  redisOptionsFor,
  redisSafetyProblems,
  requestCommandTimeoutMs,
  waitForReplicas,
} from './connections.ts';
export { type EmbeddedRedis, freePort, hasRedisServerBinary, startEmbeddedRedis } from './embedded-redis.ts';
export { type ObservedRedis, observeRedis } from './redis-metrics.ts';
export {
  parseRedisUrl,
  type RedisEndpoint,
  type RedisMode,
  type RedisTarget,
  redactRedisUrl,
  redisUrlPattern,
} from './redis-url.ts';

export type ResolvedRedis = {
  url: string;
  source: 'configured' | 'local' | 'embedded';
  embedded?: EmbeddedRedis;
};

/**
 * REDIS_URL when set; else a Redis answering on 127.0.0.1:6379; else a private redis-server child
 * (the quickstart). Without the binary this fails with one line naming what to install.
 */
export async function resolveRedis(options: {
  url: string | undefined;
  dataDir: string;
}): Promise<ResolvedRedis> {
  if (options.url) return { url: options.url, source: 'configured' };
  if (await redisAnswers('127.0.0.1', 6379)) return { url: 'redis://127.0.0.1:6379', source: 'local' };
  try {
    const embedded = await startEmbeddedRedis({ dataDir: options.dataDir });
    return { url: embedded.url, source: 'embedded', embedded };
  } catch (error) {
    if (error instanceof ClipmodError) throw error;
    throw new ClipmodError('unavailable', `could not start redis-server: ${(error as Error).message}`);
  }
}
