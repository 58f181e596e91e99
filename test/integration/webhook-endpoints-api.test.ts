import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { webhookRouter } from '../../services/api/webhook-routes.ts';
import { type Cidr, type HostLookup, parseCidrList } from '../../shared/net/index.ts';
import { deliveryIdFor } from '../../shared/webhooks/index.ts';
import { type ApiHarness, startApiHarness } from '../helpers/api-harness.ts';
import { startWebhookHarness, type WebhookHarness } from '../helpers/webhook-harness.ts';
import { answerOk, type Receiver, startReceiver, waitUntil } from '../helpers/webhook-receiver.ts';

// The webhook admin API on the real express app and auth, over the real stores, with a real webhook
// worker behind it (real clock, a 50 ms retry schedule) so the delivery log and replays are exercised.

const loopback = parseCidrList('127.0.0.0/8');
const answers: Record<string, string[]> = {
  localhost: ['127.0.0.1'],
  'hooks.example.test': ['10.0.0.7'],
  'mixed.example.test': ['93.184.215.14', '192.168.1.9'],
  'public.example.test': ['93.184.215.14'],
};
const fakeDns: HostLookup = async (hostname) => {
  const found = answers[hostname];
  if (!found) throw Object.assign(new Error(`no such host ${hostname}`), { code: 'ENOTFOUND' });
  return found.map((address) => ({ address, family: 4 }));
};
const urlPolicy: { allowList: readonly Cidr[]; lookup: HostLookup } = {
  allowList: loopback,
  lookup: fakeDns,
};

let api: ApiHarness;
let hooks: WebhookHarness;
let receiver: Receiver;
let isReceiverUp = true;

beforeAll(async () => {
  receiver = await startReceiver((request, response) =>
    isReceiverUp ? answerOk(request, response) : response.writeHead(500).end('down'),
  );
  // The worker resolves no name at all: only loopback literals are ever sent to.
  const noDns: HostLookup = async (hostname) => {
    throw Object.assign(new Error(`no such host ${hostname}`), { code: 'ENOTFOUND' });
  };
  hooks = await startWebhookHarness({
    isClockReal: true,
    settings: { schedule: [50], jitter: 0, lookup: noDns },
  });
  api = await startApiHarness({
    routers: ({ auth }) => [
      webhookRouter({ ...hooks.services, authorize: [auth.modelRouteGuard[0]!], urlPolicy }),
    ],
  });
});

afterAll(async () => {
  await api?.close();
  await hooks?.stop();
  await receiver?.stop();
});

beforeEach(() => {
  urlPolicy.allowList = loopback;
  isReceiverUp = true;
});

async function call(path: string, init: RequestInit & { key?: string; json?: unknown } = {}) {
  const { key = api.adminKey, json, ...rest } = init;
  const response = await fetch(`${api.baseUrl}${path}`, {
    ...rest,
    headers: {
      authorization: `Bearer ${key}`,
      ...(json === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(json === undefined ? {} : { body: JSON.stringify(json) }),
  });
  const text = await response.text();
  return { status: response.status, body: (text ? JSON.parse(text) : undefined) as any, text };
}

const createEndpoint = (json: unknown, key?: string) =>
  call('/v1/webhook-endpoints', { method: 'POST', json, ...(key ? { key } : {}) });

describe('webhook endpoint administration', () => {
  it('creates an endpoint and shows its secret in the create answer only', async () => {
    const created = await createEndpoint({ url: receiver.url('/created#fragment'), description: 'uploads' });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      url: receiver.url('/created'),
      eventTypes: ['moderation.completed', 'moderation.failed'],
      description: 'uploads',
      enabled: true,
    });
    expect(created.body.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    const shown = await call(`/v1/webhook-endpoints/${created.body.id}`);
    const listed = await call('/v1/webhook-endpoints');
    expect(shown.status).toBe(200);
    expect(shown.body.secret).toBeUndefined();
    expect(`${shown.text}${listed.text}`).not.toContain(created.body.secret.slice(6));
    expect(listed.body.data.map((endpoint: { id: string }) => endpoint.id)).toContain(created.body.id);
  });

  it('refuses forbidden and malformed URLs at creation, connecting to nothing', async () => {
    urlPolicy.allowList = [];
    const refusals = await Promise.all(
      [
        receiver.url('/loopback'),
        `http://[::1]:${receiver.port}/`,
        `http://localhost:${receiver.port}/`,
        'http://hooks.example.test/',
        'http://mixed.example.test/',
        'http://169.254.169.254/latest/meta-data/',
        'file:///etc/passwd',
        'gopher://public.example.test/',
        // Other spellings of loopback (S1): WHATWG parsing normalises them before the address check.
        ...[
          '2130706433',
          '0x7f.1',
          '0177.0.0.1',
          '127.1',
          '127.0.0.1.',
          '[::ffff:127.0.0.1]',
          '0',
          '0.0.0.0',
        ].map((host) => `http://${host}:${receiver.port}/loopback`),
      ].map(async (url) => (await createEndpoint({ url })).body.code),
    );
    expect(refusals).toEqual(Array(16).fill('url_forbidden'));
    expect((await createEndpoint({ url: 'http://unknown.example.test/' })).body.code).toBe(
      'url_fetch_failed',
    );
    expect((await createEndpoint({ url: 'not a url' })).status).toBe(400);
    expect((await createEndpoint({ url: receiver.url(), eventTypes: ['moderation.started'] })).status).toBe(
      400,
    );
    const publicName = await createEndpoint({ url: 'https://public.example.test/hooks' });
    expect(publicName.status).toBe(201);
    await call(`/v1/webhook-endpoints/${publicName.body.id}`, { method: 'DELETE' });
    expect(receiver.at('/loopback')).toEqual([]);
  });

  it('updates, disables, enables and deletes, checking a new URL again', async () => {
    const { body } = await createEndpoint({ url: receiver.url('/editable') });
    const path = `/v1/webhook-endpoints/${body.id}`;
    const disabled = await call(path, { method: 'PATCH', json: { enabled: false, description: 'paused' } });
    expect(disabled.body).toMatchObject({ enabled: false, disabledReason: 'manual', description: 'paused' });
    expect((await call(path, { method: 'PATCH', json: { enabled: true } })).body.enabled).toBe(true);
    const retargeted = await call(path, { method: 'PATCH', json: { eventTypes: ['moderation.failed'] } });
    expect(retargeted.body.eventTypes).toEqual(['moderation.failed']);
    urlPolicy.allowList = [];
    expect((await call(path, { method: 'PATCH', json: { url: receiver.url('/elsewhere') } })).body.code).toBe(
      'url_forbidden',
    );
    expect((await call(path, { method: 'PATCH', json: { secret: 'mine' } })).status).toBe(400);
    expect((await call(path, { method: 'DELETE' })).status).toBe(204);
    expect((await call(path)).status).toBe(404);
  });

  it('rotates the secret with an overlap window in which both secrets sign', async () => {
    const { body } = await createEndpoint({ url: receiver.url('/rotated') });
    const path = `/v1/webhook-endpoints/${body.id}/rotate-secret`;
    const rotated = await call(path, { method: 'POST', json: { overlapSeconds: 3_600 } });
    expect(rotated.status).toBe(200);
    expect(rotated.body.secret).toMatch(/^whsec_/);
    expect(rotated.body.secret).not.toBe(body.secret);
    expect(rotated.body.secrets).toHaveLength(2);
    const expiresInMs = Date.parse(rotated.body.secrets[1].expiresAt) - Date.now();
    expect(expiresInMs).toBeGreaterThan(3_590_000);
    expect(expiresInMs).toBeLessThanOrEqual(3_600_000);
    const immediate = await call(path, { method: 'POST', json: { overlapSeconds: 0 } });
    expect(immediate.body.secrets).toEqual([{ createdAt: expect.any(String), expiresAt: null }]);
  });

  it('needs the admin scope and hides one tenant’s endpoints and deliveries from another', async () => {
    const { body } = await createEndpoint({ url: receiver.url('/private') });
    const eventId = await hooks.publishModeration();
    const deliveryId = deliveryIdFor(eventId, body.id);
    const moderateOnly = await api.issueKey(['moderate']);
    expect((await createEndpoint({ url: receiver.url() }, moderateOnly)).status).toBe(403);
    expect((await call('/v1/webhook-endpoints', { key: moderateOnly })).status).toBe(403);
    const otherAdmin = await api.issueKey(['admin'], 'other-tenant');
    const asOther = (path: string, init: RequestInit & { json?: unknown } = {}) =>
      call(path, { ...init, key: otherAdmin }).then((response) => response.status);
    expect(
      await Promise.all([
        asOther(`/v1/webhook-endpoints/${body.id}`),
        asOther(`/v1/webhook-endpoints/${body.id}`, { method: 'PATCH', json: { enabled: false } }),
        asOther(`/v1/webhook-endpoints/${body.id}/deliveries`),
        asOther(`/v1/webhook-endpoints/${body.id}/rotate-secret`, { method: 'POST', json: {} }),
        asOther(`/v1/webhook-deliveries/${deliveryId}`),
        asOther(`/v1/webhook-deliveries/${deliveryId}/replay`, { method: 'POST' }),
        asOther(`/v1/webhook-endpoints/${body.id}`, { method: 'DELETE' }),
      ]),
    ).toEqual(Array(7).fill(404));
    expect((await call('/v1/webhook-endpoints', { key: otherAdmin })).body.data).toEqual([]);
  });
});

describe('delivery log and replay', () => {
  it('logs every attempt and replays a failed delivery with the same webhook-id and body', async () => {
    const { body: endpoint } = await createEndpoint({ url: receiver.url('/replayed') });
    isReceiverUp = false;
    const eventId = await hooks.publishModeration();
    const deliveryId = deliveryIdFor(eventId, endpoint.id);
    await waitUntil(
      'the delivery to fail',
      async () => (await hooks.services.log.get(deliveryId))?.status === 'failed',
    );

    const log = await call(`/v1/webhook-endpoints/${endpoint.id}/deliveries?status=failed`);
    expect(log.body.data).toHaveLength(1);
    const [failed] = log.body.data;
    expect(failed).toMatchObject({
      id: deliveryId,
      eventId,
      status: 'failed',
      finalReason: 'attempts_exhausted',
    });
    expect(failed.attempts).toHaveLength(2);
    for (const attempt of failed.attempts) {
      expect(attempt).toMatchObject({
        outcome: 'failed',
        httpStatus: 500,
        errorClass: 'server_error',
        response: 'down',
      });
      expect(typeof attempt.latencyMs).toBe('number');
      expect(Date.parse(attempt.at)).not.toBeNaN();
    }
    expect((await call(`/v1/webhook-deliveries/${deliveryId}`)).body.attempts).toEqual(failed.attempts);

    isReceiverUp = true;
    const replay = await call(`/v1/webhook-deliveries/${deliveryId}/replay`, { method: 'POST' });
    expect(replay.status).toBe(202);
    expect(replay.body).toMatchObject({ status: 'pending', series: 1 });
    await waitUntil(
      'the replay',
      async () => (await hooks.services.log.get(deliveryId))?.status === 'delivered',
    );
    const requests = receiver.at('/replayed');
    expect(requests).toHaveLength(3);
    expect(new Set(requests.map((request) => request.headers['webhook-id']))).toEqual(new Set([eventId]));
    expect(new Set(requests.map((request) => request.body.toString('hex'))).size).toBe(1);
  });

  it('replays everything that failed since a time, and refuses while the endpoint is disabled', async () => {
    const { body: endpoint } = await createEndpoint({ url: receiver.url('/backlog') });
    const since = new Date(Date.now() - 1_000).toISOString();
    isReceiverUp = false;
    const deliveryIds: string[] = [];
    for (let i = 0; i < 3; i++) deliveryIds.push(deliveryIdFor(await hooks.publishModeration(), endpoint.id));
    await waitUntil('three failures', async () => {
      const states = await Promise.all(deliveryIds.map((id) => hooks.services.log.get(id)));
      return states.every((delivery) => delivery?.status === 'failed');
    });
    isReceiverUp = true;
    const path = `/v1/webhook-endpoints/${endpoint.id}`;
    await call(path, { method: 'PATCH', json: { enabled: false } });
    const refused = await call(`${path}/replay-failed`, { method: 'POST', json: { since } });
    expect([refused.status, refused.body.code]).toEqual([409, 'conflict']);
    await call(path, { method: 'PATCH', json: { enabled: true } });
    const replay = await call(`${path}/replay-failed`, { method: 'POST', json: { since } });
    expect([replay.status, replay.body]).toEqual([202, { replayed: 3 }]);
    await waitUntil('three deliveries', async () => {
      const states = await Promise.all(deliveryIds.map((id) => hooks.services.log.get(id)));
      return states.every((delivery) => delivery?.status === 'delivered');
    });
    expect(
      (await call(`${path}/replay-failed`, { method: 'POST', json: { since: 'yesterday' } })).status,
    ).toBe(400);
  });
});
