import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createWebhookServices,
  deliveryIdFor,
  moderationEvent,
  type WebhookServices,
} from '../../shared/webhooks/index.ts';
import { type AuditClient, auditClient, type Key, secretsOf } from '../helpers/audit-client.ts';
import { type ServiceHarness, startService } from '../helpers/service-harness.ts';
import { madeUpModeration } from '../helpers/webhook-harness.ts';
import { type Receiver, startReceiver } from '../helpers/webhook-receiver.ts';

// RELIABILITY A5 through the real service (api role, real Redis, real HTTP): every admin change of API
// keys, webhook endpoints and deliveries and tenant settings appends exactly one event to the tenant's
// audit log (GET /v1/audit) naming the acting key, the resource and what changed — and nothing else:
// refused changes write nothing, another tenant sees nothing, and no secret ever reaches the log.

let service: ServiceHarness;
let receiver: Receiver;
/** The test's own handle on the deployment's webhook stores, to publish an event to replay. */
let hooks: WebhookServices;
let client: AuditClient;
let owner: Key;
let moderateOnly: Key;
let other: Key;

beforeAll(async () => {
  receiver = await startReceiver();
  service = await startService({ roles: ['api'], env: { CLIPMOD_ALLOW_PRIVATE_NETWORKS: '127.0.0.0/8' } });
  hooks = createWebhookServices({
    redis: service.redis,
    prefix: service.prefix,
    sealingKey: undefined,
    retentionSeconds: 86_400,
  });
  client = auditClient(service);
  owner = await client.issue('tenant-a', ['admin', 'moderate']);
  moderateOnly = await client.issue('tenant-a', ['moderate']);
  other = await client.issue('tenant-b', ['admin']);
});

afterAll(async () => {
  await hooks?.close();
  await service?.stop();
  await receiver?.stop();
});

describe('API keys', () => {
  it('records creation and revocation once each, with name, scopes and tenant', async () => {
    const created = await client.change(owner, 'POST', '/v1/api-keys', { name: 'ci', scopes: ['moderate'] });
    expect(created.status).toBe(201);
    expect(created.events).toEqual([
      expect.objectContaining({
        action: 'api-key.create',
        actor: owner.id,
        tenant: 'tenant-a',
        resourceId: created.body.id,
        changes: { name: 'ci', scopes: ['moderate'], tenant: 'tenant-a' },
      }),
    ]);
    expect(Date.parse(created.events[0].at)).toBeGreaterThan(Date.now() - 60_000);
    const revoked = await client.change(owner, 'DELETE', `/v1/api-keys/${created.body.id}`);
    expect(revoked.status).toBe(204);
    expect(revoked.events).toEqual([
      expect.objectContaining({
        action: 'api-key.revoke',
        actor: owner.id,
        resourceId: created.body.id,
        changes: { name: 'ci', scopes: ['moderate'] },
      }),
    ]);
  });

  it("records an operator's key for another tenant in both tenants' logs", async () => {
    const before = await client.head(client.bootstrap);
    const body = { name: 'issued', scopes: ['admin'], tenant: 'tenant-a' };
    const created = await client.change(client.bootstrap, 'POST', '/v1/api-keys', body, { logOf: owner });
    const expected = { action: 'api-key.create', actor: 'bootstrap', tenant: 'tenant-a' };
    expect(created.events).toEqual([expect.objectContaining({ ...expected, resourceId: created.body.id })]);
    expect(await client.eventsAfter(client.bootstrap, before)).toEqual([expect.objectContaining(expected)]);
  });
});

describe('webhook endpoints and deliveries', () => {
  it('records create, each update as field → {from, to}, rotation and deletion', async () => {
    const url = receiver.url('/audited');
    const created = await client.change(owner, 'POST', '/v1/webhook-endpoints', { url, description: 'v1' });
    const id = created.body.id as string;
    const resource = { actor: owner.id, tenant: 'tenant-a', resourceId: id };
    expect(created.events).toEqual([
      expect.objectContaining({
        ...resource,
        action: 'webhook-endpoint.create',
        changes: {
          url,
          eventTypes: ['moderation.completed', 'moderation.failed'],
          description: 'v1',
          enabled: true,
        },
      }),
    ]);
    const patched = await client.change(owner, 'PATCH', `/v1/webhook-endpoints/${id}`, {
      description: 'v2',
      enabled: false,
    });
    expect(patched.events).toEqual([
      expect.objectContaining({
        ...resource,
        action: 'webhook-endpoint.update',
        changes: { description: { from: 'v1', to: 'v2' }, enabled: { from: true, to: false } },
      }),
    ]);
    const enabled = await client.change(owner, 'PATCH', `/v1/webhook-endpoints/${id}`, { enabled: true });
    expect(enabled.events.map((event) => event.changes)).toEqual([{ enabled: { from: false, to: true } }]);
    // Saving what is already there changes nothing, so it records nothing.
    const unchanged = await client.change(owner, 'PATCH', `/v1/webhook-endpoints/${id}`, {
      description: 'v2',
    });
    expect([unchanged.status, unchanged.events]).toEqual([200, []]);

    const rotated = await client.change(owner, 'POST', `/v1/webhook-endpoints/${id}/rotate-secret`, {
      overlapSeconds: 60,
    });
    expect(rotated.events).toEqual([
      expect.objectContaining({
        ...resource,
        action: 'webhook-endpoint.rotate-secret',
        changes: { overlapSeconds: 60, previousSecretExpiresAt: rotated.body.secrets[1].expiresAt },
      }),
    ]);
    const deleted = await client.change(owner, 'DELETE', `/v1/webhook-endpoints/${id}`);
    expect(deleted.status).toBe(204);
    expect(deleted.events).toEqual([
      expect.objectContaining({
        ...resource,
        action: 'webhook-endpoint.delete',
        changes: expect.objectContaining({ url }),
      }),
    ]);
  });

  it('records a delivery replay and a replay of failed deliveries', async () => {
    const created = await client.change(owner, 'POST', '/v1/webhook-endpoints', {
      url: receiver.url('/replay'),
    });
    const endpointId = created.body.id as string;
    const record = madeUpModeration('tenant-a', 'completed');
    await hooks.dispatcher.publishModeration(record);
    const eventId = moderationEvent(record)!.id;
    const deliveryId = deliveryIdFor(eventId, endpointId);
    expect((await hooks.log.get(deliveryId))?.endpointId).toBe(endpointId);

    const replayed = await client.change(owner, 'POST', `/v1/webhook-deliveries/${deliveryId}/replay`);
    expect(replayed.status).toBe(202);
    expect(replayed.events).toEqual([
      expect.objectContaining({
        action: 'webhook-delivery.replay',
        actor: owner.id,
        resourceId: deliveryId,
        changes: { endpointId, eventId, series: replayed.body.series },
      }),
    ]);
    const since = new Date(Date.now() - 60_000).toISOString();
    const failed = await client.change(owner, 'POST', `/v1/webhook-endpoints/${endpointId}/replay-failed`, {
      since,
    });
    expect(failed.status).toBe(202);
    expect(failed.events).toEqual([
      expect.objectContaining({
        action: 'webhook-endpoint.replay',
        resourceId: endpointId,
        changes: { since, replayed: failed.body.replayed },
      }),
    ]);
  });
});

describe('tenant settings', () => {
  it('records each changed setting as from → to, and a save of the same settings not at all', async () => {
    const settings = { retention: { enabled: true, ttlSeconds: 3_600 } };
    const saved = await client.change(other, 'PUT', '/v1/tenant-settings', settings);
    expect(saved.events).toEqual([
      expect.objectContaining({
        action: 'tenant-settings.update',
        actor: other.id,
        tenant: 'tenant-b',
        resourceId: 'tenant-b',
        changes: {
          'retention.enabled': { from: false, to: true },
          'retention.ttlSeconds': { from: 2_592_000, to: 3_600 },
        },
      }),
    ]);
    const again = await client.change(other, 'PUT', '/v1/tenant-settings', settings);
    expect([again.status, again.events]).toEqual([200, []]);
  });
});

describe('refused changes', () => {
  it('write nothing to any log: bad bodies, unknown ids, missing scope, another tenant', async () => {
    const { body: endpoint } = await client.call(owner, 'POST', '/v1/webhook-endpoints', {
      url: receiver.url('/refusals'),
    });
    const { body: key } = await client.call(owner, 'POST', '/v1/api-keys', {
      name: 'kept',
      scopes: ['moderate'],
    });
    const heads = await Promise.all([owner, other, client.bootstrap].map((as) => client.head(as)));
    const attempts: [Key, string, string, unknown?][] = [
      [owner, 'POST', '/v1/api-keys', { name: '', scopes: ['moderate'] }],
      [owner, 'POST', '/v1/api-keys', { name: 'x', scopes: ['moderate'], tenant: 'tenant-b' }],
      [moderateOnly, 'POST', '/v1/api-keys', { name: 'x', scopes: ['moderate'] }],
      [owner, 'DELETE', '/v1/api-keys/key_missing'],
      [other, 'DELETE', `/v1/api-keys/${key.id}`],
      [owner, 'POST', '/v1/webhook-endpoints', { url: 'ftp://example.com/hook' }],
      [owner, 'PATCH', `/v1/webhook-endpoints/${endpoint.id}`, { enabled: 'yes' }],
      [owner, 'PATCH', '/v1/webhook-endpoints/ep_missing', { description: 'x' }],
      [other, 'PATCH', `/v1/webhook-endpoints/${endpoint.id}`, { description: 'x' }],
      [other, 'DELETE', `/v1/webhook-endpoints/${endpoint.id}`],
      [other, 'POST', `/v1/webhook-endpoints/${endpoint.id}/rotate-secret`, {}],
      [owner, 'POST', `/v1/webhook-endpoints/${endpoint.id}/rotate-secret`, { overlapSeconds: -1 }],
      [
        other,
        'POST',
        `/v1/webhook-endpoints/${endpoint.id}/replay-failed`,
        { since: new Date().toISOString() },
      ],
      [owner, 'POST', `/v1/webhook-endpoints/${endpoint.id}/replay-failed`, { since: 'yesterday' }],
      [owner, 'POST', '/v1/webhook-deliveries/dlv_missing/replay'],
      [owner, 'PUT', '/v1/tenant-settings', { retention: { enabled: 'yes' } }],
      [moderateOnly, 'PUT', '/v1/tenant-settings', {}],
    ];
    const statuses = [];
    for (const [as, method, path, body] of attempts)
      statuses.push((await client.call(as, method, path, body)).status);
    expect(statuses).toEqual([
      400, 403, 403, 404, 404, 400, 400, 404, 404, 404, 404, 400, 404, 400, 404, 400, 403,
    ]);
    const after = await Promise.all(
      [owner, other, client.bootstrap].map((as, i) => client.eventsAfter(as, heads[i]!)),
    );
    expect(after).toEqual([[], [], []]);
  });
});

describe('reading the log', () => {
  it("shows another tenant's admin none of this tenant's events", async () => {
    const { body: endpoint } = await client.call(owner, 'POST', '/v1/webhook-endpoints', {
      url: receiver.url('/isolation'),
    });
    const ownLog = (await client.call(owner, 'GET', '/v1/audit?limit=500')).text;
    expect(ownLog).toContain(endpoint.id);
    const otherLog = await client.call(other, 'GET', '/v1/audit?limit=500');
    expect(otherLog.status).toBe(200);
    expect(otherLog.text).not.toContain(endpoint.id);
    expect(otherLog.body.data.every((event: any) => event.tenant === 'tenant-b')).toBe(true);
    expect(otherLog.text).not.toContain(owner.id);
  });

  it('never holds a secret, a digest of one, or a secret pasted into free text', async () => {
    const { body: pasted } = await client.call(owner, 'POST', '/v1/api-keys', {
      name: `copy of ${owner.key}`,
      scopes: ['moderate'],
    });
    const { body: endpoint } = await client.call(owner, 'POST', '/v1/webhook-endpoints', {
      url: receiver.url('/secrets'),
      description: 'secret-bearing',
    });
    const { body: rotated } = await client.call(
      owner,
      'POST',
      `/v1/webhook-endpoints/${endpoint.id}/rotate-secret`,
      {},
    );
    await client.call(owner, 'PATCH', `/v1/webhook-endpoints/${endpoint.id}`, {
      description: `was ${endpoint.secret}`,
    });
    const keys = [owner, moderateOnly, other].map((key) => key.key);
    const secrets = secretsOf([...keys, pasted.key, endpoint.secret, rotated.secret, service.adminKey]);
    const logs = await Promise.all(
      [owner, other, client.bootstrap].map((as) => client.call(as, 'GET', '/v1/audit?limit=500')),
    );
    const raw = [...logs.map((log) => log.text), await client.rawStreams()].join('\n');
    expect(raw).toContain(pasted.id);
    expect(raw).toContain('[redacted]');
    expect(secrets.filter((secret) => raw.includes(secret))).toEqual([]);
    expect(raw).not.toMatch(/whsec_|cm_[A-Za-z0-9_-]{43}/);
  });

  it('pages newest first with limit and before, merges policy changes, and filters by resource', async () => {
    const pager = await client.issue('pager', ['admin']);
    const document = {
      labels: [{ id: 'red', prompts: ['a red image'], threshold: 0.5, action: 'block' }],
      baseline: ['a green image', 'a blue image'],
    };
    await client.call(pager, 'POST', '/v1/api-keys', { name: 'first', scopes: ['moderate'] });
    expect((await client.call(pager, 'PUT', '/v1/policies/paged', document)).status).toBe(201);
    await client.call(pager, 'POST', '/v1/api-keys', { name: 'second', scopes: ['moderate'] });
    await client.call(pager, 'PUT', '/v1/tenant-settings', { bank: { maxCosineDistance: 0.2 } });
    const actions = [
      'tenant-settings.update',
      'api-key.create',
      'policy.put',
      'api-key.create',
      'api-key.create',
    ];

    const pages = [];
    let before: string | null = null;
    do {
      const query: string = before === null ? '' : `&before=${before}`;
      const page = await client.call(pager, 'GET', `/v1/audit?limit=2${query}`);
      pages.push(page.body.data);
      before = page.body.next;
    } while (before !== null && pages.length < 10);
    expect(pages.map((page) => page.length)).toEqual([2, 2, 1]);
    expect(pages.flat().map((event: any) => event.action)).toEqual(actions);
    expect(pages.flat()[2]).toMatchObject({ resourceId: 'paged', actor: pager.id, changes: { version: 1 } });

    const filtered = await client.call(pager, 'GET', '/v1/audit?resource=api-key&limit=2');
    expect(filtered.body.data.map((event: any) => event.changes.name)).toEqual(['second', 'first']);
    const rest = await client.call(pager, 'GET', `/v1/audit?resource=api-key&before=${filtered.body.next}`);
    expect(rest.body).toMatchObject({ data: [{ changes: { name: 'pager' } }], next: null });
    const policies = await client.call(pager, 'GET', '/v1/audit?resource=policy');
    expect(policies.body.data.map((event: any) => event.action)).toEqual(['policy.put']);
    expect((await client.call(pager, 'GET', '/v1/audit?resource=nope')).status).toBe(400);
    expect((await client.call(pager, 'GET', '/v1/audit?before=nope')).status).toBe(400);
  });
});
