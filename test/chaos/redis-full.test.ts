import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import type { Redis } from 'ioredis';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  connectRedis,
  type EmbeddedRedis,
  parseRedisInfo,
  startEmbeddedRedis,
} from '../../shared/redis/index.ts';
import { builtModel } from '../helpers/models.ts';
import { type ServiceHarness, startService } from '../helpers/service-harness.ts';
import { pngChunk } from './hostile-image-inputs.ts';

// RELIABILITY.md Q8: a private redis-server with `maxmemory 64mb` and noeviction, flooded with
// submissions while no inference worker runs. Once Redis is full the API answers 503 (or 429) with
// Retry-After instead of failing oddly, Redis evicts nothing, and every submission accepted before
// that completes once workers drain the queue.

let redis: EmbeddedRedis;
let client: Redis;
let api: ServiceHarness;
let inference: ServiceHarness | undefined;
const redisDir = new URL(`../../.cache/chaos/redis-full-${randomBytes(4).toString('hex')}`, import.meta.url)
  .pathname;

beforeAll(async () => {
  mkdirSync(redisDir, { recursive: true });
  redis = await startEmbeddedRedis({ dataDir: redisDir });
  client = await connectRedis(redis.url, 'producer', 'test-redis-full');
  await client.config('SET', 'maxmemory', '64mb');
  await client.config('SET', 'maxmemory-policy', 'noeviction');
  api = await startService({ roles: ['api'], env: { REDIS_URL: redis.url } });
  const policy = await api.request('/v1/policies/default', {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      labels: [{ id: 'red', prompts: ['a red image'], threshold: 0.5, action: 'block' }],
      baseline: ['a green image', 'a blue image'],
    }),
  });
  expect(policy.status).toBe(201);
}, 60_000);

afterAll(async () => {
  await inference?.stop();
  await api?.stop();
  client?.disconnect();
  await redis?.stop();
  rmSync(redisDir, { recursive: true, force: true });
});

/** About 1 MB of incompressible PNG; a distinct text chunk per call gives each a distinct hash. */
async function noiseImages(): Promise<(n: number) => Uint8Array> {
  const raw = { width: 700, height: 500, channels: 3 as const };
  const png = await sharp(randomBytes(raw.width * raw.height * 3), { raw })
    .png({ compressionLevel: 1 })
    .toBuffer();
  const iend = png.subarray(-12);
  const body = png.subarray(0, -12);
  return (n) => new Uint8Array(Buffer.concat([body, pngChunk('tEXt', Buffer.from(`n\0${n}`)), iend]));
}

async function submit(image: Uint8Array) {
  const response = await api.request('/v1/moderations', {
    method: 'POST',
    headers: { 'content-type': 'image/png' },
    body: image,
  });
  const body = (await response.json()) as { id?: string; code?: string };
  return { status: response.status, retryAfter: response.headers.get('retry-after'), body };
}

describe('Q8: Redis full (maxmemory 64mb, noeviction)', () => {
  it('answers 503 with Retry-After once full, evicts nothing and completes every accepted job', async () => {
    const image = await noiseImages();
    const accepted: string[] = [];
    let refusal: Awaited<ReturnType<typeof submit>> | undefined;
    for (let n = 0; n < 400 && !refusal; n++) {
      const result = await submit(image(n));
      if (result.status === 202 || result.status === 200) accepted.push(result.body.id!);
      else refusal = result;
    }
    expect(refusal, 'Redis never filled up').toBeDefined();
    expect([503, 429]).toContain(refusal!.status);
    expect(Number(refusal!.retryAfter)).toBeGreaterThanOrEqual(1);
    // Refused again on the next try, not accepted and dropped.
    expect([503, 429]).toContain((await submit(image(1_000))).status);

    inference = await startService({
      roles: ['inference'],
      prefix: api.prefix,
      env: { REDIS_URL: redis.url, MODEL_DIR: await builtModel('color'), CLIPMOD_INTRA_OP_THREADS: '1' },
    });
    const startedAt = performance.now();
    for (const id of accepted) {
      const response = await api.request(`/v1/moderations/${id}?wait=30000`);
      expect(((await response.json()) as { status: string }).status, id).toBe('completed');
    }
    const stats = parseRedisInfo(await client.info('stats'));
    expect(stats.get('evicted_keys')).toBe('0');
    const figures = {
      accepted: accepted.length,
      refusal: refusal!.status,
      retryAfter: refusal!.retryAfter,
      drainS: Math.round((performance.now() - startedAt) / 100) / 10,
    };
    process.stderr.write(`[chaos] Q8 ${JSON.stringify(figures)}\n`);
  }, 240_000);
});
