import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express, { type Request, type Response } from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Auth, takeToken } from '../../services/api/auth/index.ts';
import { connectRedis, startEmbeddedRedis } from '../../shared/redis/index.ts';
import { type ApiHarness, startApiHarness } from '../helpers/api-harness.ts';

/** A model-style route behind the full guard (authenticate → moderate → rate limit). */
function echoRouter({ auth }: { auth: Auth }) {
  const router = express.Router();
  router.post('/v1/echo', auth.modelRouteGuard, (_req: Request, res: Response) => {
    res.json({ ok: true });
  });
  return [router];
}

function echo(harness: ApiHarness, key: string) {
  return fetch(`${harness.baseUrl}/v1/echo`, { method: 'POST', headers: { authorization: `Bearer ${key}` } });
}

// 60 per minute = one token per second; a burst of 3. The clock only moves when a test moves it.
let nowMs = Date.UTC(2025, 0, 1);
let harness: ApiHarness;

beforeAll(async () => {
  harness = await startApiHarness({
    routers: echoRouter,
    rateLimit: { limitPerMinute: 60, burst: 3, now: () => nowMs },
  });
});

afterAll(async () => {
  await harness.close();
});

describe('per-key rate limit', () => {
  it('allows the burst, then answers 429 with Retry-After, and recovers after the refill', async () => {
    const key = await harness.issueKey(['moderate']);
    const remaining: (string | null)[] = [];
    for (let i = 0; i < 3; i++) {
      const response = await echo(harness, key);
      expect(response.status).toBe(200);
      remaining.push(response.headers.get('ratelimit-remaining'));
    }
    expect(remaining).toEqual(['2', '1', '0']);

    const limited = await echo(harness, key);
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('1');
    expect(limited.headers.get('ratelimit-limit')).toBe('3');
    expect(limited.headers.get('ratelimit-remaining')).toBe('0');
    expect(limited.headers.get('ratelimit-reset')).toBe('3');
    expect(limited.headers.get('ratelimit-policy')).toBe('60;w=60;burst=3');
    expect(await limited.json()).toMatchObject({ code: 'rate_limited', limitPerMinute: 60, burst: 3 });

    nowMs += 999;
    expect((await echo(harness, key)).status).toBe(429);
    nowMs += 1;
    expect((await echo(harness, key)).status).toBe(200);
    expect((await echo(harness, key)).status).toBe(429);
  });

  it('keeps one bucket per key', async () => {
    const first = await harness.issueKey(['moderate']);
    const second = await harness.issueKey(['moderate'], 'acme');
    for (let i = 0; i < 3; i++) expect((await echo(harness, first)).status).toBe(200);
    expect((await echo(harness, first)).status).toBe(429);
    expect((await echo(harness, second)).status).toBe(200);
  });

  it('refills no further than the burst however long a key stays idle', async () => {
    const key = await harness.issueKey(['moderate']);
    expect((await echo(harness, key)).status).toBe(200);
    nowMs += 3_600_000;
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await echo(harness, key)).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
  });

  it('counts nothing for unauthenticated requests', async () => {
    const response = await echo(harness, 'not-a-key');
    expect(response.status).toBe(401);
    expect(response.headers.get('ratelimit-remaining')).toBeNull();
  });
});

describe('with the real clock', () => {
  it('lets a request through again once a token has refilled', async () => {
    // 120 per minute: a token every 500 ms. On a loaded machine a request can take long enough for
    // a token to come back, so spend until refused rather than assuming the second one is.
    const realTime = await startApiHarness({
      routers: echoRouter,
      rateLimit: { limitPerMinute: 120, burst: 1 },
    });
    try {
      const key = await realTime.issueKey(['moderate']);
      const statuses: number[] = [];
      while (statuses.length < 10 && statuses.at(-1) !== 429)
        statuses.push((await echo(realTime, key)).status);
      expect(statuses[0]).toBe(200);
      expect(statuses.at(-1)).toBe(429);
      await new Promise((resolve) => setTimeout(resolve, 600));
      expect((await echo(realTime, key)).status).toBe(200);
    } finally {
      await realTime.close();
    }
  });

  it('does not limit at all when the limit is 0', async () => {
    const unlimited = await startApiHarness({
      routers: echoRouter,
      rateLimit: { limitPerMinute: 0, burst: 1 },
    });
    try {
      const key = await unlimited.issueKey(['moderate']);
      for (let i = 0; i < 5; i++) expect((await echo(unlimited, key)).status).toBe(200);
      expect((await echo(unlimited, key)).headers.get('ratelimit-limit')).toBeNull();
    } finally {
      await unlimited.close();
    }
  });
});

describe('token bucket script', () => {
  const settings = { limitPerMinute: 60, burst: 2 };
  const bucket = () => `${harness.prefix}:ratelimit:script-${Math.random().toString(36).slice(2)}`;

  it('reports the wait for the next token and the time until full', async () => {
    const key = bucket();
    const start = 1_000_000;
    await takeToken(harness.redis, key, settings, start);
    expect(await takeToken(harness.redis, key, settings, start)).toEqual({
      isAllowed: true,
      remaining: 0,
      retryAfterMs: 0,
      resetMs: 2_000,
    });
    expect(await takeToken(harness.redis, key, settings, start + 250)).toEqual({
      isAllowed: false,
      remaining: 0,
      retryAfterMs: 750,
      resetMs: 1_750,
    });
    const ttlMs = await harness.redis.pttl(key);
    expect(ttlMs).toBeGreaterThan(0);
    expect(ttlMs).toBeLessThanOrEqual(2_750);
  });

  it('mints no tokens when a caller clock runs behind the stored one', async () => {
    const key = bucket();
    const start = 5_000_000;
    await takeToken(harness.redis, key, settings, start);
    await takeToken(harness.redis, key, settings, start);
    expect((await takeToken(harness.redis, key, settings, start - 60_000)).isAllowed).toBe(false);
    expect((await takeToken(harness.redis, key, settings, start + 1_000)).isAllowed).toBe(true);
  });

  it('loads its script into a Redis that has never seen it, and again after SCRIPT FLUSH', async () => {
    // A private Redis: flushing the shared one would pull scripts from under other test files.
    const dataDir = join(tmpdir(), `clipmod-rate-limit-test-${process.pid}`);
    const embedded = await startEmbeddedRedis({ dataDir });
    const client = await connectRedis(embedded.url, 'producer', 'test-rate-limit');
    try {
      expect((await takeToken(client, bucket(), settings, 0)).isAllowed).toBe(true);
      expect(await client.script('FLUSH')).toBe('OK');
      const key = bucket();
      expect((await takeToken(client, key, settings, 0)).remaining).toBe(1);
      expect((await takeToken(client, key, settings, 0)).remaining).toBe(0);
    } finally {
      client.disconnect();
      await embedded.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
