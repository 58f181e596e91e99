import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type ClipModel, loadClipModel } from '../../shared/clip/clip-model.ts';
import {
  embedTextsCached,
  InMemoryTextEmbeddingCache,
  RedisTextEmbeddingCache,
} from '../../shared/clip/text-embedding-cache.ts';
import { builtModel } from '../helpers/models.ts';

const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const f32 = (values: number[]) => Float32Array.from(values);

describe('InMemoryTextEmbeddingCache', () => {
  it('returns stored embeddings and misses for other texts or other models', async () => {
    const cache = new InMemoryTextEmbeddingCache({ maxEntries: 10 });
    await cache.setMany('m1', new Map([['cat', f32([1, 2])]]));
    const [hit, otherText] = await cache.getMany('m1', ['cat', 'dog']);
    expect([...(hit ?? [])]).toEqual([1, 2]);
    expect(otherText).toBeUndefined();
    expect(await cache.getMany('m2', ['cat'])).toEqual([undefined]);
  });

  it('evicts the least recently used entry, counting reads as use', async () => {
    const cache = new InMemoryTextEmbeddingCache({ maxEntries: 2 });
    await cache.setMany(
      'm',
      new Map([
        ['a', f32([1])],
        ['b', f32([2])],
      ]),
    );
    await cache.getMany('m', ['a']);
    await cache.setMany('m', new Map([['c', f32([3])]]));
    expect(cache.size).toBe(2);
    const [a, b, c] = await cache.getMany('m', ['a', 'b', 'c']);
    expect([a?.[0], b, c?.[0]]).toEqual([1, undefined, 3]);
  });

  it('keeps its own copy, so later writes to the caller’s array do not leak in', async () => {
    const cache = new InMemoryTextEmbeddingCache({ maxEntries: 2 });
    const embedding = f32([5]);
    await cache.setMany('m', new Map([['a', embedding]]));
    embedding[0] = 9;
    expect((await cache.getMany('m', ['a']))[0]?.[0]).toBe(5);
  });

  it('refuses a capacity below one', () => {
    expect(() => new InMemoryTextEmbeddingCache({ maxEntries: 0 })).toThrow(RangeError);
  });
});

describe('RedisTextEmbeddingCache', () => {
  let redis: Redis;
  let keyPrefix = '';

  beforeAll(() => {
    redis = new Redis(redisUrl, { lazyConnect: false, maxRetriesPerRequest: 1 });
  });

  beforeEach(() => {
    keyPrefix = `test:${randomUUID()}:`;
  });

  afterEach(async () => {
    const keys = await redis.keys(`${keyPrefix}*`);
    if (keys.length > 0) await redis.del(...keys);
  });

  afterAll(async () => {
    await redis.quit();
  });

  it('stores raw float32 bytes under the prefix and reads many at once', async () => {
    const cache = new RedisTextEmbeddingCache({ redis, keyPrefix });
    await cache.setMany(
      'm',
      new Map([
        ['cat', f32([0.5, -1.25, 3])],
        ['dog', f32([1, 0, 0])],
      ]),
    );
    const stored = await redis.getBuffer(cache.keyFor('m', 'cat'));
    expect(stored?.byteLength).toBe(12);
    expect(stored?.readFloatLE(4)).toBe(-1.25);
    expect(await redis.keys(`${keyPrefix}*`)).toHaveLength(2);
    const [cat, bird, dog] = await cache.getMany('m', ['cat', 'bird', 'dog']);
    expect([...(cat ?? [])]).toEqual([0.5, -1.25, 3]);
    expect(bird).toBeUndefined();
    expect([...(dog ?? [])]).toEqual([1, 0, 0]);
  });

  it('sets the TTL when one is given and none otherwise', async () => {
    const expiring = new RedisTextEmbeddingCache({ redis, keyPrefix, ttlSeconds: 600 });
    const lasting = new RedisTextEmbeddingCache({ redis, keyPrefix });
    await expiring.setMany('m', new Map([['a', f32([1])]]));
    await lasting.setMany('m', new Map([['b', f32([1])]]));
    const ttl = await redis.ttl(expiring.keyFor('m', 'a'));
    expect(ttl).toBeGreaterThan(590);
    expect(ttl).toBeLessThanOrEqual(600);
    expect(await redis.ttl(lasting.keyFor('m', 'b'))).toBe(-1);
  });

  it('shares entries between workers with separate connections', async () => {
    const other = new Redis(redisUrl);
    try {
      await new RedisTextEmbeddingCache({ redis, keyPrefix }).setMany('m', new Map([['cat', f32([7])]]));
      const seen = await new RedisTextEmbeddingCache({ redis: other, keyPrefix }).getMany('m', ['cat']);
      expect(seen[0]?.[0]).toBe(7);
    } finally {
      await other.quit();
    }
  });

  it('reads a value of a foreign byte length as a miss', async () => {
    const cache = new RedisTextEmbeddingCache({ redis, keyPrefix });
    await redis.set(cache.keyFor('m', 'odd'), Buffer.from([1, 2, 3]));
    expect(await cache.getMany('m', ['odd'])).toEqual([undefined]);
  });
});

describe('embedTextsCached', () => {
  let model: ClipModel;
  let redis: Redis;
  const keyPrefix = `test:${randomUUID()}:`;

  beforeAll(async () => {
    model = await loadClipModel(await builtModel('tiny'), { provider: 'cpu', intraOpThreads: 1 });
    redis = new Redis(redisUrl);
  });

  afterAll(async () => {
    const keys = await redis.keys(`${keyPrefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
    await model.close();
  });

  /** The real model, with a record of each encodeTexts call. */
  function recordingModel() {
    const calls: string[][] = [];
    const recording = {
      modelId: model.modelId,
      embeddingDim: model.embeddingDim,
      encodeTexts: (texts: readonly string[]) => {
        calls.push([...texts]);
        return model.encodeTexts(texts);
      },
    };
    return { recording, calls };
  }

  it('encodes only the misses, in one batch, and returns rows in the order asked', async () => {
    const cache = new RedisTextEmbeddingCache({ redis, keyPrefix });
    const { recording, calls } = recordingModel();
    const first = await embedTextsCached(recording, cache, ['a red image', 'a blue image']);
    expect(first).toMatchObject({ hits: 0, misses: 2 });
    const second = await embedTextsCached(recording, cache, ['a blue image', 'a green image', 'a red image']);
    expect(second).toMatchObject({ hits: 2, misses: 1 });
    expect(calls).toEqual([['a red image', 'a blue image'], ['a green image']]);
    const direct = await model.encodeTexts(['a blue image', 'a green image', 'a red image']);
    const largest = second.embeddings.reduce(
      (max, value, index) => Math.max(max, Math.abs(value - direct[index]!)),
      0,
    );
    expect(largest).toBeLessThan(1e-6);
  });

  it('encodes a text repeated in one request once, counting distinct texts', async () => {
    const cache = new InMemoryTextEmbeddingCache({ maxEntries: 100 });
    const { recording, calls } = recordingModel();
    const result = await embedTextsCached(recording, cache, ['a cat', 'a cat', 'a dog']);
    expect(result).toMatchObject({ hits: 0, misses: 2 });
    expect(calls).toEqual([['a cat', 'a dog']]);
    const dim = model.embeddingDim;
    expect([...result.embeddings.subarray(0, dim)]).toEqual([...result.embeddings.subarray(dim, 2 * dim)]);
  });

  it('does not call the model when every text is cached', async () => {
    const cache = new InMemoryTextEmbeddingCache({ maxEntries: 100 });
    const { recording, calls } = recordingModel();
    await embedTextsCached(recording, cache, ['a cat']);
    const again = await embedTextsCached(recording, cache, ['a cat']);
    expect(again).toMatchObject({ hits: 1, misses: 0 });
    expect(calls).toHaveLength(1);
  });
});
