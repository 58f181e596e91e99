import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ClipmodError } from '../../shared/errors/index.ts';
import {
  assertRedisIsSafe,
  connectRedis,
  type EmbeddedRedis,
  redisOptionsFor,
  startEmbeddedRedis,
} from '../../shared/redis/index.ts';

const started: EmbeddedRedis[] = [];
const dataDir = join(tmpdir(), `clipmod-redis-test-${process.pid}`);

afterAll(async () => {
  await Promise.all(started.map((redis) => redis.stop()));
  rmSync(dataDir, { recursive: true, force: true });
});

describe('Redis connections', () => {
  it('uses BullMQ production settings per role', () => {
    expect(redisOptionsFor('worker').maxRetriesPerRequest).toBeNull();
    expect(redisOptionsFor('producer').enableOfflineQueue).toBe(false);
  });

  it('accepts the test Redis (noeviction, AOF)', async () => {
    const client = await connectRedis(process.env.REDIS_URL!, 'producer', 'test');
    try {
      await expect(assertRedisIsSafe(client, { requireAof: true })).resolves.toBeUndefined();
    } finally {
      client.disconnect();
    }
  });

  it('refuses a Redis with maxmemory-policy allkeys-lru and says how to fix it', async () => {
    const redis = await startEmbeddedRedis({ dataDir });
    started.push(redis);
    const client = await connectRedis(redis.url, 'producer', 'test');
    try {
      await client.config('SET', 'maxmemory-policy', 'allkeys-lru');
      await client.config('SET', 'appendonly', 'no');
      const error = await assertRedisIsSafe(client, { requireAof: true }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ClipmodError);
      expect((error as ClipmodError).code).toBe('invalid_config');
      expect((error as Error).message).toMatch(
        /allkeys-lru.*noeviction.*CONFIG SET maxmemory-policy noeviction/,
      );
      expect((error as Error).message).toMatch(/AOF/);
    } finally {
      client.disconnect();
    }
  });

  it('answers a clear unavailable error when nothing listens', async () => {
    const error = await connectRedis('redis://127.0.0.1:1', 'producer', 'test').catch((e: unknown) => e);
    expect((error as ClipmodError).code).toBe('unavailable');
  });
});
