import { createHash } from 'node:crypto';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express, { type Request, type Response } from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Auth, principalOf } from '../../services/api/auth/index.ts';
import { freePort, startEmbeddedRedis } from '../../shared/redis/index.ts';
import { type ApiHarness, startApiHarness } from '../helpers/api-harness.ts';

/** A model-style route behind the full guard, answering with the caller. */
function whoamiRouter({ auth }: { auth: Auth }) {
  const router = express.Router();
  router.get('/v1/whoami', auth.modelRouteGuard, (_req: Request, res: Response) => {
    res.json(principalOf(res));
  });
  return [router];
}

async function call(harness: ApiHarness, method: string, path: string, key?: string, body?: unknown) {
  const headers: Record<string, string> = key === undefined ? {} : { authorization: `Bearer ${key}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`${harness.baseUrl}${path}`, {
    method,
    headers,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : undefined };
}

let harness: ApiHarness;

beforeAll(async () => {
  harness = await startApiHarness({ routers: whoamiRouter });
});

afterAll(async () => {
  await harness.close();
});

describe('authentication', () => {
  it('answers 401 with a Bearer challenge when no key is sent', async () => {
    const response = await call(harness, 'GET', '/v1/whoami');
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toMatch(/^Bearer realm="clipmod"$/);
    expect(response.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect(response.body.code).toBe('unauthorized');
  });

  it('answers 401 invalid_token for an unknown key and for a malformed one', async () => {
    const unknown = `cm_${'A'.repeat(43)}`;
    for (const key of [unknown, 'not-a-key']) {
      const response = await call(harness, 'GET', '/v1/whoami', key);
      expect(response.status).toBe(401);
      expect(response.headers.get('www-authenticate')).toContain('error="invalid_token"');
    }
    const basic = await fetch(`${harness.baseUrl}/v1/whoami`, { headers: { authorization: 'Basic abc' } });
    expect(basic.status).toBe(401);
  });

  it('answers 403 forbidden when a moderate key calls the admin routes', async () => {
    const key = await harness.issueKey(['moderate']);
    const response = await call(harness, 'GET', '/v1/api-keys', key);
    expect(response.status).toBe(403);
    expect(response.body).toMatchObject({ code: 'forbidden', requiredScope: 'admin' });
  });

  it('answers 403 when an admin-only key calls a model route', async () => {
    const key = await harness.issueKey(['admin']);
    expect((await call(harness, 'GET', '/v1/whoami', key)).status).toBe(403);
  });

  it('accepts the bootstrap key with both scopes for tenant default', async () => {
    const response = await call(harness, 'GET', '/v1/whoami', harness.adminKey);
    expect(response.status).toBe(200);
    expect(response.body).toEqual({ tenant: 'default', keyId: 'bootstrap', scopes: ['moderate', 'admin'] });
    expect((await call(harness, 'GET', '/v1/api-keys', harness.adminKey)).status).toBe(200);
  });

  it('refuses the bootstrap key with one character changed', async () => {
    const wrong = `${harness.adminKey.slice(0, -1)}${harness.adminKey.endsWith('x') ? 'y' : 'x'}`;
    expect((await call(harness, 'GET', '/v1/whoami', wrong)).status).toBe(401);
  });
});

describe('key administration', () => {
  it('creates a moderate key that works until it is deleted, then answers 401', async () => {
    const created = await call(harness, 'POST', '/v1/api-keys', harness.adminKey, {
      name: 'uploader',
      scopes: ['moderate'],
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ tenant: 'default', scopes: ['moderate'], name: 'uploader' });
    expect(created.body.key).toMatch(/^cm_[A-Za-z0-9_-]{43}$/);
    expect(created.headers.get('location')).toBe(`/v1/api-keys/${created.body.id}`);

    const before = await call(harness, 'GET', '/v1/whoami', created.body.key);
    expect(before.body).toEqual({ tenant: 'default', keyId: created.body.id, scopes: ['moderate'] });

    const deleted = await call(harness, 'DELETE', `/v1/api-keys/${created.body.id}`, harness.adminKey);
    expect(deleted.status).toBe(204);
    expect((await call(harness, 'GET', '/v1/whoami', created.body.key)).status).toBe(401);
    const again = await call(harness, 'DELETE', `/v1/api-keys/${created.body.id}`, harness.adminKey);
    expect(again.status).toBe(404);
  });

  it('lists keys without their secrets', async () => {
    const created = await call(harness, 'POST', '/v1/api-keys', harness.adminKey, {
      name: 'listed',
      scopes: ['moderate', 'admin'],
    });
    const listing = await call(harness, 'GET', '/v1/api-keys', harness.adminKey);
    const entry = listing.body.data.find((item: { id: string }) => item.id === created.body.id);
    expect(entry).toEqual({
      id: created.body.id,
      tenant: 'default',
      scopes: ['moderate', 'admin'],
      name: 'listed',
      createdAt: created.body.createdAt,
    });
    expect(JSON.stringify(listing.body)).not.toContain(created.body.key);
  });

  it('stores only SHA-256 digests: the secret appears nowhere in Redis', async () => {
    const created = await call(harness, 'POST', '/v1/api-keys', harness.adminKey, {
      name: 'hashed',
      scopes: ['moderate'],
    });
    const secret: string = created.body.key;
    const keys = await harness.redis.keys(`${harness.prefix}*`);
    const dump: string[] = [...keys];
    for (const key of keys) {
      const type = await harness.redis.type(key);
      if (type === 'string') dump.push((await harness.redis.get(key)) ?? '');
      if (type === 'zset') dump.push(...(await harness.redis.zrange(key, 0, -1)));
      if (type === 'hash') dump.push(...Object.values(await harness.redis.hgetall(key)));
    }
    expect(dump.join('\n')).not.toContain(secret);
    expect(dump.join('\n')).not.toContain(secret.slice(3));
    const digest = createHash('sha256').update(secret).digest('hex');
    expect(keys).toContain(`${harness.prefix}:apikey:${digest}`);
  });

  it('names the offending field in 400 bad_request answers', async () => {
    const cases: [unknown, string][] = [
      [{ scopes: ['moderate'] }, 'name'],
      [{ name: 'x', scopes: ['root'] }, 'scopes.0'],
      [{ name: 'x', scopes: [] }, 'scopes'],
      [{ name: 'x', scopes: ['admin'], tenant: 'Not A Tenant' }, 'tenant'],
      [{ name: 'x', scopes: ['admin'], owner: 'me' }, 'owner'],
    ];
    for (const [body, field] of cases) {
      const response = await call(harness, 'POST', '/v1/api-keys', harness.adminKey, body);
      expect(response.status, JSON.stringify(body)).toBe(400);
      expect(response.body).toMatchObject({ code: 'bad_request', field });
    }
  });
});

describe('tenants', () => {
  it('keeps each tenant to its own keys while default admins see any tenant', async () => {
    const acmeAdmin = await harness.issueKey(['admin'], 'acme');
    const acmeWorker = await call(harness, 'POST', '/v1/api-keys', acmeAdmin, {
      name: 'w',
      scopes: ['moderate'],
    });
    expect(acmeWorker.body.tenant).toBe('acme');
    const globex = await call(harness, 'POST', '/v1/api-keys', harness.adminKey, {
      name: 'g',
      scopes: ['moderate'],
      tenant: 'globex',
    });
    expect(globex.body.tenant).toBe('globex');

    const acmeList = await call(harness, 'GET', '/v1/api-keys', acmeAdmin);
    expect(acmeList.body.data.map((k: { tenant: string }) => k.tenant)).toEqual(['acme', 'acme']);
    const asOperator = await call(harness, 'GET', '/v1/api-keys?tenant=globex', harness.adminKey);
    expect(asOperator.body.data.map((k: { id: string }) => k.id)).toEqual([globex.body.id]);

    expect((await call(harness, 'GET', '/v1/api-keys?tenant=globex', acmeAdmin)).status).toBe(403);
    const crossCreate = await call(harness, 'POST', '/v1/api-keys', acmeAdmin, {
      name: 'x',
      scopes: ['moderate'],
      tenant: 'globex',
    });
    expect(crossCreate.status).toBe(403);
    expect((await call(harness, 'DELETE', `/v1/api-keys/${globex.body.id}`, acmeAdmin)).status).toBe(404);
    expect((await call(harness, 'GET', '/v1/whoami', globex.body.key)).body.tenant).toBe('globex');
  });
});

describe('api harness', () => {
  it('deletes every key under its prefix on close()', async () => {
    const scratch = await startApiHarness();
    await scratch.issueKey(['moderate']);
    await scratch.issueKey(['admin'], 'acme');
    const observer = harness.redis;
    // Per key its record and id key; per tenant its index and admin audit stream.
    expect((await observer.keys(`${scratch.prefix}*`)).length).toBe(8);
    await scratch.close();
    expect(await observer.keys(`${scratch.prefix}*`)).toEqual([]);
  });
});

describe('when Redis is away', () => {
  it('answers 503 unavailable quickly when Redis never answered (closed port)', async () => {
    const down = await startApiHarness({
      redisUrl: `redis://127.0.0.1:${await freePort()}`,
      allowRedisDown: true,
      routers: whoamiRouter,
    });
    try {
      // The producer connection has no offline queue: a hang would last commandTimeout (2 s) or more.
      let startedAt = Date.now();
      const unknownKey = await call(down, 'GET', '/v1/whoami', `cm_${'B'.repeat(43)}`);
      expect(Date.now() - startedAt).toBeLessThan(1_500);
      expect(unknownKey.status).toBe(503);
      expect(unknownKey.body.code).toBe('unavailable');
      expect(unknownKey.headers.get('retry-after')).toBe('1');
      startedAt = Date.now();
      const listing = await call(down, 'GET', '/v1/api-keys', down.adminKey);
      expect(Date.now() - startedAt).toBeLessThan(1_500);
      expect(listing.status).toBe(503);
    } finally {
      await down.close();
    }
  });

  it('answers 503, not 500, once a working Redis stops', async () => {
    const dataDir = join(tmpdir(), `clipmod-api-keys-test-${process.pid}`);
    const redis = await startEmbeddedRedis({ dataDir });
    const harnessOnIt = await startApiHarness({ redisUrl: redis.url, routers: whoamiRouter });
    try {
      const key = await harnessOnIt.issueKey(['moderate']);
      expect((await call(harnessOnIt, 'GET', '/v1/whoami', key)).status).toBe(200);
      await redis.stop();
      const response = await call(harnessOnIt, 'GET', '/v1/whoami', key);
      expect(response.status).toBe(503);
      expect(response.body.code).toBe('unavailable');
    } finally {
      await harnessOnIt.close();
      await redis.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
