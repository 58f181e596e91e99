import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { type ModerationRecord, ModerationStore } from '../../shared/moderation/index.ts';

// A finished moderation is final (RELIABILITY.md Q5b): a worker that lost its job's lock may still
// write after another worker finished the job, and that late write must not undo the result.

const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const prefix = `{clipmod-test-${randomBytes(4).toString('hex')}}`;
const store = new ModerationStore({ redis, prefix, resultTtlSeconds: 60, imageTtlSeconds: 60 });

afterAll(async () => {
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
});

function record(id: string, status: ModerationRecord['status'], attempts = 1): ModerationRecord {
  return {
    id,
    tenant: 'default',
    status,
    policy: { id: 'default', version: 1 },
    model: null,
    metadata: {},
    image: { format: 'png', width: 1, height: 1, frames: 1, sizeBytes: 1 },
    attempts,
    createdAt: new Date(0).toISOString(),
  };
}

describe('ModerationStore.save', () => {
  it('moves a moderation from queued to processing to completed', async () => {
    expect(await store.save(record('a', 'queued'))).toBe(true);
    expect(await store.save(record('a', 'processing'))).toBe(true);
    expect(await store.save(record('a', 'completed'))).toBe(true);
    expect((await store.get('a'))?.status).toBe('completed');
    expect(await redis.ttl(store.recordKey('a'))).toBeGreaterThan(50);
  });

  it.each(['completed', 'failed'] as const)('keeps a %s moderation as it is', async (status) => {
    const id = `late-${status}`;
    await store.save(record(id, status, 1));
    // The late writes of a worker whose lock expired: its start, its own result, its failure.
    expect(await store.save(record(id, 'processing', 2))).toBe(false);
    expect(await store.save(record(id, 'completed', 2))).toBe(false);
    expect(await store.save(record(id, 'failed', 2))).toBe(false);
    expect(await store.get(id)).toEqual(record(id, status, 1));
  });
});
