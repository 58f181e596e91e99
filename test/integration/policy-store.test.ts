import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { RequestHandler } from 'express';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../services/api/app.ts';
import { policyRouter } from '../../services/api/policy-routes.ts';
import { ClipmodError } from '../../shared/errors/index.ts';
import { createLogger } from '../../shared/logger/index.ts';
import { createRegistry } from '../../shared/metrics/index.ts';
import {
  type PolicyChangeMessage,
  PolicyStore,
  parsePolicyChangeMessage,
  policyChangedChannel,
  validatePolicy,
} from '../../shared/policy/index.ts';
import { connectRedis } from '../../shared/redis/index.ts';

const prefix = `{clipmod-test-${randomBytes(6).toString('hex')}}`;
const document = validatePolicy({
  labels: [{ id: 'red', prompts: ['a red image'], threshold: 0.5, action: 'block' }],
  baseline: ['a green image', 'a blue image'],
});
const fixedClock = () => new Date('2025-01-02T03:04:05.000Z');

let redis: Redis;
let subscriber: Redis;
let store: PolicyStore;
let server: Server;
let baseUrl = '';
const messages: PolicyChangeMessage[] = [];

/** Stands in for authenticate + requireScope: tenant and scopes come from test headers; none → 401. */
const testAuthorize: RequestHandler = (req, res, next) => {
  const tenant = req.get('x-test-tenant');
  if (tenant === undefined) throw new ClipmodError('unauthorized', 'no test principal');
  const scopes = (req.get('x-test-scopes') ?? 'admin,moderate').split(',');
  res.locals.principal = { tenant, keyId: `key-of-${tenant}`, scopes };
  next();
};

beforeAll(async () => {
  redis = await connectRedis(process.env.REDIS_URL!, 'producer', 'policy-test');
  subscriber = await connectRedis(process.env.REDIS_URL!, 'worker', 'policy-test-sub');
  subscriber.on('message', (_channel: string, text: string) => {
    const message = parsePolicyChangeMessage(text);
    if (message) messages.push(message);
  });
  await subscriber.subscribe(policyChangedChannel(prefix));
  store = new PolicyStore({ redis, prefix, now: fixedClock });
  const countTokens = (text: string) => text.split(/\s+/).length + 2;
  const app = createApp({
    logger: createLogger({ level: 'silent' }),
    registry: createRegistry('api'),
    readiness: async () => ({ status: 'ready', checks: {}, warnings: [] }),
    routers: [policyRouter({ store, authorize: [testAuthorize], countTokens })],
  });
  server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server?.close(() => resolve()));
  subscriber?.disconnect();
  if (redis) {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
      if (keys.length > 0) await redis.del(...keys);
      cursor = next;
    } while (cursor !== '0');
    redis.disconnect();
  }
});

/** Waits until the subscriber has seen `count` messages for `id` (Pub/Sub is asynchronous). */
async function changesFor(id: string, count: number): Promise<PolicyChangeMessage[]> {
  const deadline = Date.now() + 2_000;
  while (Date.now() < deadline) {
    const found = messages.filter((message) => message.id === id);
    if (found.length >= count) return found;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return messages.filter((message) => message.id === id);
}

describe('PolicyStore', () => {
  it('numbers versions 1, 2, … and keeps each one readable', async () => {
    const first = await store.put('t1', 'nsfw', document, 'alice');
    const second = await store.put('t1', 'nsfw', { ...document, scoring: 'independent' }, 'bob');
    expect(first).toEqual({
      policy: {
        id: 'nsfw',
        version: 1,
        document,
        createdAt: '2025-01-02T03:04:05.000Z',
        author: 'alice',
        kind: 'put',
        basedOn: null,
        diff: expect.any(Array),
      },
      isCreated: true,
    });
    expect(second.policy.version).toBe(2);
    expect(second.isCreated).toBe(false);
    expect((await store.get('t1', 'nsfw'))?.document.scoring).toBe('independent');
    expect(await store.get('t1', 'nsfw', 1)).toEqual(first.policy);
    expect(await store.get('t1', 'nsfw', 3)).toBeUndefined();
  });

  it('never gives two concurrent puts the same version', async () => {
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, index) => store.put('t1', 'busy', document, `writer-${index}`)),
    );
    const versions = results.map((result) => result.policy.version).sort((a, b) => a - b);
    expect(versions).toEqual(Array.from({ length: 30 }, (_, index) => index + 1));
    expect(results.filter((result) => result.isCreated)).toHaveLength(1);
    expect((await store.versions('t1', 'busy'))?.versions.map((entry) => entry.version)).toEqual(versions);
  });

  it('lists only the live policies of the tenant asked for, sorted by id', async () => {
    await store.put('list-a', 'zeta', document, 'alice');
    await store.put('list-a', 'alpha', document, 'alice');
    await store.put('list-a', 'alpha', document, 'bob');
    await store.put('list-b', 'other', document, 'carol');
    expect(await store.list('list-a')).toEqual([
      { id: 'alpha', version: 2, createdAt: '2025-01-02T03:04:05.000Z', author: 'bob' },
      { id: 'zeta', version: 1, createdAt: '2025-01-02T03:04:05.000Z', author: 'alice' },
    ]);
    expect(await store.get('list-b', 'alpha')).toBeUndefined();
    expect(await store.list('nobody')).toEqual([]);
  });

  it('hides a deleted policy but keeps its versions for audit and continues their numbering', async () => {
    await store.put('t1', 'gone', document, 'alice');
    await store.put('t1', 'gone', document, 'bob');
    expect(await store.delete('t1', 'gone', 'carol')).toBe(2);
    expect(await store.get('t1', 'gone')).toBeUndefined();
    expect((await store.list('t1')).map((policy) => policy.id)).not.toContain('gone');
    expect(await store.versions('t1', 'gone')).toMatchObject({
      id: 'gone',
      liveVersion: undefined,
      shadowVersion: undefined,
      versions: [
        { version: 1, createdAt: '2025-01-02T03:04:05.000Z', author: 'alice', basedOn: null },
        { version: 2, createdAt: '2025-01-02T03:04:05.000Z', author: 'bob', basedOn: 1, diff: [] },
      ],
    });
    expect((await store.get('t1', 'gone', 2))?.author).toBe('bob');
    expect(await store.delete('t1', 'gone', 'carol')).toBeUndefined();
    const recreated = await store.put('t1', 'gone', document, 'carol');
    expect(recreated.policy.version).toBe(3);
    expect(recreated.isCreated).toBe(true);
  });

  it('answers undefined for ids never used', async () => {
    expect(await store.get('t1', 'never')).toBeUndefined();
    expect(await store.versions('t1', 'never')).toBeUndefined();
    expect(await store.delete('t1', 'never', 'alice')).toBeUndefined();
  });

  it('publishes every put and delete on the change channel', async () => {
    await store.put('t9', 'watched', document, 'alice');
    await store.put('t9', 'watched', document, 'alice');
    await store.delete('t9', 'watched', 'alice');
    expect(await changesFor('watched', 3)).toEqual([
      { tenant: 't9', id: 'watched', version: 1, deleted: false, event: 'put' },
      { tenant: 't9', id: 'watched', version: 2, deleted: false, event: 'put' },
      { tenant: 't9', id: 'watched', version: 2, deleted: true, event: 'delete' },
    ]);
  });

  it('refuses ids that could escape the key layout', async () => {
    for (const id of ['a:b', 'UPPER', '', '../x']) {
      await expect(store.put('t1', id, document, 'alice')).rejects.toMatchObject({ code: 'bad_request' });
    }
  });

  it('keeps every key under the hash-tagged prefix, one namespace per key kind', async () => {
    await store.put('t1', 'keys', document, 'alice');
    const keys = [store.policyKey('t1', 'keys'), store.historyKey('t1', 'keys'), store.indexKey('t1')];
    expect(keys).toEqual([
      `${prefix}:policy:t1:keys`,
      `${prefix}:policy-history:t1:keys`,
      `${prefix}:policy-index:t1`,
    ]);
    expect(await redis.exists(...keys)).toBe(3);
  });
});

type Answer = { status: number; headers: Headers; body: Record<string, unknown> };

async function call(
  method: string,
  path: string,
  options: { body?: string; tenant?: string; scopes?: string } = {},
) {
  const headers: Record<string, string> = { 'x-test-tenant': options.tenant ?? 'http' };
  if (options.scopes !== undefined) headers['x-test-scopes'] = options.scopes;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`${baseUrl}${path}`, { method, headers, body: options.body });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : {} } as Answer;
}

const putPolicy = (id: string, body: unknown, tenant?: string) =>
  call('PUT', `/v1/policies/${id}`, { body: JSON.stringify(body), ...(tenant ? { tenant } : {}) });

describe('policy routes', () => {
  it('creates with 201 and a Location, then answers 200 for each new version', async () => {
    const created = await putPolicy('route-a', { labels: document.labels, baseline: document.baseline });
    expect(created.status).toBe(201);
    expect(created.headers.get('location')).toBe('/v1/policies/route-a');
    expect(created.body).toMatchObject({
      id: 'route-a',
      version: 1,
      document,
      createdAt: '2025-01-02T03:04:05.000Z',
      author: 'key-of-http',
      kind: 'put',
      basedOn: null,
    });
    const updated = await putPolicy('route-a', { ...document, scoring: 'independent' });
    expect(updated.status).toBe(200);
    expect(updated.body.version).toBe(2);
  });

  it('reads the live version, any version by number, the list and the history', async () => {
    await putPolicy('route-b', document);
    await putPolicy('route-b', { ...document, baseline: ['a grey image'] });
    expect((await call('GET', '/v1/policies/route-b')).body).toMatchObject({ version: 2 });
    const first = await call('GET', '/v1/policies/route-b?version=1');
    expect(first.body).toMatchObject({ version: 1, document: { baseline: document.baseline } });
    const list = await call('GET', '/v1/policies');
    expect((list.body.data as { id: string }[]).map((entry) => entry.id)).toContain('route-b');
    const history = await call('GET', '/v1/policies/route-b/versions');
    expect(history.body).toMatchObject({
      id: 'route-b',
      liveVersion: 2,
      data: [{ version: 1 }, { version: 2 }],
    });
  });

  it('deletes with 204, after which the policy answers 404 not_found', async () => {
    await putPolicy('route-c', document);
    expect((await call('DELETE', '/v1/policies/route-c')).status).toBe(204);
    const missing = await call('GET', '/v1/policies/route-c');
    expect(missing.status).toBe(404);
    expect(missing.body.code).toBe('not_found');
    expect((await call('DELETE', '/v1/policies/route-c')).status).toBe(404);
    const history = await call('GET', '/v1/policies/route-c/versions');
    expect(history.body).toMatchObject({ liveVersion: null, data: [{ version: 1 }] });
  });

  it('answers 404 for unknown ids and versions, 400 for a malformed version', async () => {
    expect((await call('GET', '/v1/policies/unknown')).status).toBe(404);
    expect((await call('GET', '/v1/policies/unknown/versions')).status).toBe(404);
    await putPolicy('route-d', document);
    expect((await call('GET', '/v1/policies/route-d?version=7')).status).toBe(404);
    for (const version of ['0', '-1', 'two', '1.5']) {
      const answer = await call('GET', `/v1/policies/route-d?version=${version}`);
      expect(answer.status).toBe(400);
      expect(answer.body.errors).toEqual([{ path: 'version', message: 'must be a positive integer' }]);
    }
  });

  it('rejects a schema violation with 400 and the field paths', async () => {
    const labels = [...document.labels, { ...document.labels[0], id: 'red', threshold: 3 }];
    const answer = await putPolicy('route-e', { labels });
    expect(answer.status).toBe(400);
    expect(answer.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect((answer.body.errors as { path: string }[]).map((error) => error.path)).toEqual([
      'labels[1].threshold',
      'labels[1].id',
    ]);
    expect((await call('GET', '/v1/policies/route-e')).status).toBe(404);
  });

  it('rejects prompts longer than the model reads, counted by the injected tokenizer', async () => {
    const prompt = Array.from({ length: 80 }, () => 'w').join(' ');
    const answer = await putPolicy('route-f', {
      ...document,
      labels: [{ ...document.labels[0], prompts: [prompt] }],
    });
    expect(answer.status).toBe(400);
    expect(answer.body.errors).toEqual([
      { path: 'labels[0].prompts[0]', message: '82 tokens, the model reads at most 77' },
    ]);
  });

  it('rejects invalid JSON, a missing JSON body and a bad id with 400', async () => {
    const broken = await call('PUT', '/v1/policies/route-g', { body: '{"labels": [' });
    expect(broken.status).toBe(400);
    expect(broken.body.code).toBe('bad_request');
    const noBody = await fetch(`${baseUrl}/v1/policies/route-g`, {
      method: 'PUT',
      headers: { 'x-test-tenant': 't' },
    });
    expect(noBody.status).toBe(400);
    const badId = await putPolicy('Bad:Id', document);
    expect(badId.status).toBe(400);
    expect(badId.body.errors).toEqual([{ path: 'id', message: expect.stringContaining('must match') }]);
  });

  it('keeps tenants apart', async () => {
    await putPolicy('shared-name', document, 'tenant-x');
    expect((await call('GET', '/v1/policies/shared-name', { tenant: 'tenant-y' })).status).toBe(404);
    expect((await call('DELETE', '/v1/policies/shared-name', { tenant: 'tenant-y' })).status).toBe(404);
    expect((await call('GET', '/v1/policies', { tenant: 'tenant-y' })).body).toEqual({ data: [] });
    const second = await putPolicy('shared-name', document, 'tenant-y');
    expect(second).toMatchObject({ status: 201, body: { version: 1 } });
    expect((await call('GET', '/v1/policies/shared-name', { tenant: 'tenant-x' })).status).toBe(200);
  });

  it('needs the admin scope even if the injected chain forgets to check it', async () => {
    const answer = await call('GET', '/v1/policies', { scopes: 'moderate' });
    expect(answer.status).toBe(403);
    expect(answer.body.code).toBe('forbidden');
  });

  it('authorizes only its own routes', async () => {
    const unrelated = await fetch(`${baseUrl}/v1/not-policies`);
    expect(unrelated.status).toBe(404);
    const unauthenticated = await fetch(`${baseUrl}/v1/policies`);
    expect(unauthenticated.status).toBe(401);
  });
});
