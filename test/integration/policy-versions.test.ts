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
import { PolicyStore, ShadowStats, type Verdict, validatePolicy } from '../../shared/policy/index.ts';
import { connectRedis } from '../../shared/redis/index.ts';

// Versions with author, time and diff; rollback; the audit log; the shadow pointer and its tally —
// through the HTTP routes against a real Redis (authentication stubbed by test headers).

const prefix = `{clipmod-test-${randomBytes(6).toString('hex')}}`;
const document = validatePolicy({
  labels: [{ id: 'red', prompts: ['a red image'], threshold: 0.5, action: 'block' }],
  baseline: ['a green image', 'a blue image'],
});
const withThreshold = (threshold: number) => ({
  ...document,
  labels: [{ ...document.labels[0]!, threshold }],
});

let redis: Redis;
let store: PolicyStore;
let stats: ShadowStats;
let server: Server;
let baseUrl = '';

const testAuthorize: RequestHandler = (req, res, next) => {
  const tenant = req.get('x-test-tenant');
  if (tenant === undefined) throw new ClipmodError('unauthorized', 'no test principal');
  res.locals.principal = { tenant, keyId: req.get('x-test-key') ?? `key-of-${tenant}`, scopes: ['admin'] };
  next();
};

beforeAll(async () => {
  redis = await connectRedis(process.env.REDIS_URL!, 'producer', 'policy-versions-test');
  store = new PolicyStore({ redis, prefix });
  stats = new ShadowStats({ redis, prefix });
  const app = createApp({
    logger: createLogger({ level: 'silent' }),
    registry: createRegistry('api'),
    readiness: async () => ({ status: 'ready', checks: {}, warnings: [] }),
    routers: [policyRouter({ store, authorize: [testAuthorize], shadowStats: stats })],
  });
  server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server?.close(() => resolve()));
  if (!redis) return;
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
});

async function call(
  method: string,
  path: string,
  options: { body?: unknown; tenant?: string; key?: string } = {},
) {
  const headers: Record<string, string> = { 'x-test-tenant': options.tenant ?? 'acme' };
  if (options.key !== undefined) headers['x-test-key'] = options.key;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const body = options.body === undefined ? undefined : JSON.stringify(options.body);
  const response = await fetch(`${baseUrl}${path}`, { method, headers, body });
  const text = await response.text();
  return { status: response.status, body: (text ? JSON.parse(text) : {}) as Record<string, any> };
}

describe('policy versions', () => {
  it('records the author and a diff against the replaced version on every PUT', async () => {
    await call('PUT', '/v1/policies/diffed', { body: document, key: 'key-alice' });
    const second = await call('PUT', '/v1/policies/diffed', { body: withThreshold(0.8), key: 'key-bob' });
    expect(second.body).toMatchObject({
      version: 2,
      author: 'key-bob',
      kind: 'put',
      basedOn: 1,
      diff: [{ op: 'changed', path: 'labels.red.threshold', from: 0.5, to: 0.8 }],
    });
    expect(Date.parse(second.body.createdAt)).toBeGreaterThan(Date.now() - 60_000);
    const history = await call('GET', '/v1/policies/diffed/versions');
    expect(history.body.data.map((entry: any) => [entry.version, entry.author, entry.diff.length])).toEqual([
      [1, 'key-alice', 3],
      [2, 'key-bob', 1],
    ]);
  });

  it('diffs each of many concurrent writes against the version it actually replaced', async () => {
    const thresholds = Array.from({ length: 12 }, (_, index) => 0.3 + index * 0.05);
    await store.put('acme', 'racy', document, 'seed');
    await Promise.all(
      thresholds.map((t) => store.put('acme', 'racy', validatePolicy(withThreshold(t)), 'w')),
    );
    const history = (await store.versions('acme', 'racy'))!.versions;
    expect(history.map((entry) => entry.version)).toEqual(Array.from({ length: 13 }, (_, i) => i + 1));
    for (const entry of history.slice(1)) {
      const previous = await store.get('acme', 'racy', entry.version - 1);
      expect(entry.basedOn).toBe(entry.version - 1);
      const from = entry.diff.find((change) => change.path === 'labels.red.threshold');
      expect(from === undefined ? previous!.document.labels[0]!.threshold : (from as any).from).toBe(
        previous!.document.labels[0]!.threshold,
      );
    }
  });

  it('rolls back by writing the old document as a new live version', async () => {
    await call('PUT', '/v1/policies/rolled', { body: document });
    await call('PUT', '/v1/policies/rolled', { body: withThreshold(0.9) });
    const rolled = await call('POST', '/v1/policies/rolled/rollback', { body: { version: 1 } });
    expect(rolled.status).toBe(200);
    expect(rolled.body).toMatchObject({ version: 3, kind: 'rollback', rollbackOf: 1, basedOn: 2, document });
    expect(rolled.body.diff).toEqual([{ op: 'changed', path: 'labels.red.threshold', from: 0.9, to: 0.5 }]);
    expect((await call('GET', '/v1/policies/rolled')).body.version).toBe(3);
    expect((await call('GET', '/v1/policies/rolled?version=2')).body.document.labels[0].threshold).toBe(0.9);
  });

  it('answers 404 for a rollback to a missing version and 400 for a malformed one', async () => {
    await call('PUT', '/v1/policies/rolled-bad', { body: document });
    expect((await call('POST', '/v1/policies/rolled-bad/rollback', { body: { version: 9 } })).status).toBe(
      404,
    );
    for (const body of [{}, { version: 0 }, { version: 'x' }, [1]]) {
      const answer = await call('POST', '/v1/policies/rolled-bad/rollback', { body });
      expect(answer.status).toBe(400);
    }
  });

  it('restores a deleted policy by rolling back to one of its versions', async () => {
    await call('PUT', '/v1/policies/revived', { body: document });
    await call('DELETE', '/v1/policies/revived');
    const revived = await call('POST', '/v1/policies/revived/rollback', { body: { version: 1 } });
    expect(revived).toMatchObject({ status: 201, body: { version: 2, basedOn: null } });
  });
});

describe('policy audit log', () => {
  it('lists every change to a policy, newest first, with actor, time, version and diff', async () => {
    await call('PUT', '/v1/policies/audited', { body: document, key: 'key-a' });
    await call('PUT', '/v1/policies/audited', { body: withThreshold(0.7), key: 'key-b' });
    await call('POST', '/v1/policies/audited/rollback', { body: { version: 1 }, key: 'key-c' });
    await call('PUT', '/v1/policies/audited/shadow', { body: { version: 2 }, key: 'key-d' });
    await call('DELETE', '/v1/policies/audited/shadow', { key: 'key-e' });
    await call('DELETE', '/v1/policies/audited', { key: 'key-f' });
    const audit = await call('GET', '/v1/policies/audited/audit');
    expect(audit.body.data.map((event: any) => [event.action, event.actor, event.version])).toEqual([
      ['delete', 'key-f', 3],
      ['shadow-clear', 'key-e', 2],
      ['shadow-set', 'key-d', 2],
      ['rollback', 'key-c', 3],
      ['put', 'key-b', 2],
      ['put', 'key-a', 1],
    ]);
    expect(audit.body.data[3]).toMatchObject({ policy: 'audited', rollbackOf: 1, basedOn: 2 });
    expect(audit.body.data[4].diff).toEqual([
      { op: 'changed', path: 'labels.red.threshold', from: 0.5, to: 0.7 },
    ]);
    expect(Date.parse(audit.body.data[0].at)).toBeGreaterThan(Date.now() - 60_000);
    expect(audit.body.next).toBeNull();
  });

  it('pages the tenant-wide log with limit and before, and keeps tenants apart', async () => {
    for (const id of ['page-a', 'page-b', 'page-c'])
      await call('PUT', `/v1/policies/${id}`, { body: document, tenant: 'pager' });
    const first = await call('GET', '/v1/policy-audit?limit=2', { tenant: 'pager' });
    expect(first.body.data.map((event: any) => event.policy)).toEqual(['page-c', 'page-b']);
    const second = await call('GET', `/v1/policy-audit?limit=2&before=${first.body.next}`, {
      tenant: 'pager',
    });
    expect(second.body).toMatchObject({ data: [{ policy: 'page-a' }], next: null });
    expect((await call('GET', '/v1/policy-audit', { tenant: 'stranger' })).body.data).toEqual([]);
    expect((await call('GET', '/v1/policy-audit?before=nope', { tenant: 'pager' })).status).toBe(400);
  });
});

function verdict(action: Verdict['action'], isRedTriggered: boolean): Verdict {
  const label = {
    id: 'red',
    score: 0.9,
    threshold: 0.5,
    triggered: isRedTriggered,
    action: 'block' as const,
  };
  return { action, flagged: action !== 'allow', labels: [{ ...label, evidence: { prompt: 'a red image' } }] };
}

describe('shadow mode routes', () => {
  it('points the live version at a stored candidate, visible on GET, until DELETE', async () => {
    await call('PUT', '/v1/policies/shadowed', { body: document });
    await call('PUT', '/v1/policies/shadowed', { body: withThreshold(0.9) });
    const set = await call('PUT', '/v1/policies/shadowed/shadow', { body: { version: 1 } });
    expect(set.body).toEqual({
      id: 'shadowed',
      liveVersion: 2,
      shadowVersion: 1,
      previousShadowVersion: null,
    });
    expect((await call('GET', '/v1/policies/shadowed')).body).toMatchObject({ version: 2, shadowVersion: 1 });
    expect((await call('GET', '/v1/policies/shadowed/versions')).body.shadowVersion).toBe(1);
    expect((await call('DELETE', '/v1/policies/shadowed/shadow')).status).toBe(204);
    expect((await call('GET', '/v1/policies/shadowed')).body.shadowVersion).toBeUndefined();
    expect((await call('DELETE', '/v1/policies/shadowed/shadow')).status).toBe(404);
  });

  it('saves a draft as a candidate version that never goes live', async () => {
    await call('PUT', '/v1/policies/drafted', { body: document });
    const set = await call('PUT', '/v1/policies/drafted/shadow', { body: { policy: withThreshold(0.2) } });
    expect(set.body).toMatchObject({
      liveVersion: 1,
      shadowVersion: 2,
      candidate: { kind: 'candidate', basedOn: 1 },
    });
    expect((await call('GET', '/v1/policies/drafted')).body).toMatchObject({ version: 1, shadowVersion: 2 });
    const invalid = await call('PUT', '/v1/policies/drafted/shadow', { body: { policy: withThreshold(3) } });
    expect(invalid.status).toBe(400);
    expect(invalid.body.errors).toEqual([
      { path: 'policy.labels[0].threshold', message: expect.any(String) },
    ]);
  });

  it('refuses a shadow for a missing policy or version', async () => {
    expect((await call('PUT', '/v1/policies/ghost/shadow', { body: { version: 1 } })).status).toBe(404);
    await call('PUT', '/v1/policies/lonely', { body: document });
    expect((await call('PUT', '/v1/policies/lonely/shadow', { body: { version: 5 } })).status).toBe(404);
    expect((await call('GET', '/v1/policies/lonely/shadow/summary')).status).toBe(404);
  });

  it('summarises agreement and flips by label, counting each moderation once', async () => {
    await call('PUT', '/v1/policies/tallied', { body: document });
    await call('PUT', '/v1/policies/tallied/shadow', { body: { policy: withThreshold(0.95) } });
    const outcome = { tenant: 'acme', policyId: 'tallied', shadowVersion: 2 };
    await stats.record({
      ...outcome,
      moderationId: 'mod-00001',
      live: verdict('block', true),
      shadow: verdict('allow', false),
    });
    await stats.record({
      ...outcome,
      moderationId: 'mod-00002',
      live: verdict('allow', false),
      shadow: verdict('allow', false),
    });
    await stats.record({
      ...outcome,
      moderationId: 'mod-00003',
      live: verdict('block', true),
      shadow: undefined,
    });
    expect(
      await stats.record({
        ...outcome,
        moderationId: 'mod-00001',
        live: verdict('block', true),
        shadow: verdict('allow', false),
      }),
    ).toBe(false);
    const summary = await call('GET', '/v1/policies/tallied/shadow/summary');
    expect(summary.body).toEqual({
      id: 'tallied',
      liveVersion: 1,
      isRunning: true,
      shadowVersion: 2,
      count: 3,
      agreed: 1,
      agreementRate: 0.5,
      errors: 1,
      actions: { 'block->allow': 1, 'allow->allow': 1 },
      flips: { red: { triggered: 0, cleared: 1 } },
    });
    await call('DELETE', '/v1/policies/tallied/shadow');
    const past = await call('GET', '/v1/policies/tallied/shadow/summary?version=2');
    expect(past.body).toMatchObject({ isRunning: false, count: 3 });
  });
});
