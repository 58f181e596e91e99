import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { deliveryIdFor, type WebhookEndpoint } from '../../shared/webhooks/index.ts';
import {
  harnessActor,
  madeUpModeration,
  startWebhookHarness,
  type WebhookHarness,
} from '../helpers/webhook-harness.ts';
import {
  answerOk,
  isSignedWith,
  type Receiver,
  startReceiver,
  verifiesWith,
  waitUntil,
} from '../helpers/webhook-receiver.ts';

// RELIABILITY W2, W3, W4 (statuses) and W5 against a real BullMQ worker and loopback receivers, on a
// fake clock: each scheduled retry is reached by moving the clock and promoting its delayed job.

const hour = 3_600_000;
/** W2 inspects 1,000 deliveries at full size (CLIPMOD_WEBHOOK_FULL_SIZE=1), 200 in `npm test`. */
const inspectedCount = process.env.CLIPMOD_WEBHOOK_FULL_SIZE === '1' ? 1_000 : 200;
const svixScheduleMs = [5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000];
const operationalEvents = ['delivery.exhausted', 'endpoint.disabled'] as const;

let receiver: Receiver;

beforeAll(async () => {
  receiver = await startReceiver();
});

afterAll(async () => {
  await receiver?.stop();
});

/** Answers by path: /ops 200, /failing 500, /limited 429 + Retry-After 120, /unavailable 503, /gone 410. */
function answerByPath(isUp: () => boolean = () => false) {
  return (request: { path: string }, response: import('node:http').ServerResponse) => {
    if (request.path === '/ops' || isUp()) return answerOk(request as never, response);
    if (request.path === '/limited')
      return response.writeHead(429, { 'retry-after': '120' }).end('slow down');
    if (request.path === '/unavailable') return response.writeHead(503).end('maintenance');
    if (request.path === '/gone') return response.writeHead(410).end('gone');
    response.writeHead(500).end('down');
  };
}

function typesAt(path: string): string[] {
  return receiver.at(path).map((request) => (JSON.parse(request.body.toString()) as { type: string }).type);
}

describe('retry schedule and status handling (default schedule, fake clock)', () => {
  let hooks: WebhookHarness;
  let ops: WebhookEndpoint;

  beforeEach(async () => {
    receiver.requests.length = 0;
    receiver.handler = answerByPath();
    hooks = await startWebhookHarness();
    ops = (await hooks.createEndpoint(receiver.url('/ops'), { eventTypes: operationalEvents })).endpoint;
  });

  afterEach(async () => {
    await hooks.stop();
  });

  it('retries at 0, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (−20 % jitter), then gives up and tells the tenant', async () => {
    const { endpoint, secret } = await hooks.createEndpoint(receiver.url('/failing'));
    const eventId = await hooks.publishModeration();
    const deliveryId = deliveryIdFor(eventId, endpoint.id);
    let delivery = await hooks.waitForAttempts(deliveryId, 1);
    for (let attempt = 2; attempt <= 8; attempt++) delivery = await hooks.runNextAttempt(deliveryId);

    expect(delivery).toMatchObject({ status: 'failed', finalReason: 'attempts_exhausted', attemptCount: 8 });
    const attempts = await hooks.services.log.attempts(deliveryId);
    const gaps = attempts.slice(1).map((attempt, i) => attempt.at - attempts[i]!.at);
    gaps.forEach((gapMs, i) => {
      expect(gapMs).toBeGreaterThanOrEqual(Math.floor(svixScheduleMs[i]! * 0.8));
      expect(gapMs).toBeLessThanOrEqual(svixScheduleMs[i]!);
    });
    for (const attempt of attempts) {
      expect(attempt).toMatchObject({
        outcome: 'failed',
        httpStatus: 500,
        errorClass: 'server_error',
        response: 'down',
      });
      expect(attempt.latencyMs).toBeGreaterThanOrEqual(0);
    }
    const requests = receiver.at('/failing');
    expect(requests).toHaveLength(8);
    expect(new Set(requests.map((request) => request.headers['webhook-id']))).toEqual(new Set([eventId]));
    expect(new Set(requests.map((request) => request.body.toString('hex'))).size).toBe(1);
    expect(requests.map((request) => Number(request.headers['webhook-timestamp']))).toEqual(
      attempts.map((attempt) => Math.floor(attempt.at / 1000)),
    );
    expect(requests.every((request) => isSignedWith(secret, request))).toBe(true);

    await waitUntil('the delivery.exhausted event', () => typesAt('/ops').includes('delivery.exhausted'));
    const exhausted = JSON.parse(receiver.at('/ops')[0]!.body.toString());
    expect(exhausted.data).toMatchObject({
      deliveryId,
      eventId,
      attempts: 8,
      lastErrorClass: 'server_error',
    });
    expect((await hooks.services.endpoints.get('default', endpoint.id))?.isEnabled).toBe(true);
  });

  it('waits at least Retry-After after a 429, and retries a 503 on the schedule', async () => {
    const limited = (await hooks.createEndpoint(receiver.url('/limited'))).endpoint;
    const unavailable = (await hooks.createEndpoint(receiver.url('/unavailable'))).endpoint;
    const eventId = await hooks.publishModeration();
    const afterLimited = await hooks.waitForAttempts(deliveryIdFor(eventId, limited.id), 1);
    const afterUnavailable = await hooks.waitForAttempts(deliveryIdFor(eventId, unavailable.id), 1);

    expect(afterLimited).toMatchObject({
      status: 'pending',
      lastErrorClass: 'rate_limited',
      lastHttpStatus: 429,
    });
    expect(afterLimited.nextAttemptAt! - afterLimited.lastAttemptAt!).toBeGreaterThanOrEqual(120_000);
    expect(afterUnavailable).toMatchObject({ status: 'pending', lastErrorClass: 'server_error' });
    const unavailableDelayMs = afterUnavailable.nextAttemptAt! - afterUnavailable.lastAttemptAt!;
    expect(unavailableDelayMs).toBeGreaterThanOrEqual(4_000);
    expect(unavailableDelayMs).toBeLessThanOrEqual(5_000);
    const retried = await hooks.runNextAttempt(deliveryIdFor(eventId, limited.id));
    expect(retried.lastAttemptAt! - afterLimited.lastAttemptAt!).toBeGreaterThanOrEqual(120_000);
  });

  it('disables an endpoint that answers 410 Gone, attempts nothing more and tells the other endpoints', async () => {
    const gone = (await hooks.createEndpoint(receiver.url('/gone'))).endpoint;
    const first = deliveryIdFor(await hooks.publishModeration(), gone.id);
    expect(await hooks.waitForAttempts(first, 1)).toMatchObject({ status: 'failed', finalReason: 'gone' });
    expect(await hooks.services.queue.getJob(`${first}.0.2`)).toBeUndefined();
    expect(await hooks.services.endpoints.get('default', gone.id)).toMatchObject({
      isEnabled: false,
      disabledReason: 'gone',
    });
    await waitUntil('the endpoint.disabled event', () => typesAt('/ops').includes('endpoint.disabled'));
    expect(JSON.parse(receiver.at('/ops')[0]!.body.toString()).data).toMatchObject({
      endpointId: gone.id,
      reason: 'gone',
    });

    const second = deliveryIdFor(await hooks.publishModeration(), gone.id);
    expect(await hooks.services.log.get(second)).toMatchObject({
      status: 'failed',
      finalReason: 'endpoint_disabled',
      attemptCount: 0,
    });
    expect(await hooks.services.queue.getJob(`${second}.0.1`)).toBeUndefined();
    expect(receiver.at('/gone')).toHaveLength(1);
    expect(ops.id).not.toBe(gone.id);
  });
});

describe('auto-disable (W5, fake clock)', () => {
  let hooks: WebhookHarness | undefined;
  let isUp = false;

  beforeEach(() => {
    receiver.requests.length = 0;
    isUp = false;
    receiver.handler = answerByPath(() => isUp);
  });

  afterEach(async () => {
    await hooks?.stop();
  });

  it('disables after five days of failures, sends nothing more, and delivers the backlog after re-enable + replay', async () => {
    hooks = await startWebhookHarness({ settings: { schedule: Array(12).fill(12 * hour), jitter: 0 } });
    await hooks.createEndpoint(receiver.url('/ops'), { eventTypes: operationalEvents });
    const { endpoint, secret } = await hooks.createEndpoint(receiver.url('/failing'));
    const startedAt = hooks.clock.now();
    const firstEvent = await hooks.publishModeration();
    const first = deliveryIdFor(firstEvent, endpoint.id);
    await hooks.waitForAttempts(first, 1);
    const isEnabled = async () => (await hooks!.services.endpoints.get('default', endpoint.id))?.isEnabled;
    while ((await isEnabled()) && hooks.clock.now() - startedAt < 200 * hour)
      await hooks.runNextAttempt(first);

    expect(hooks.clock.now() - startedAt).toBe(120 * hour);
    expect(receiver.at('/failing')).toHaveLength(11);
    expect(await hooks.services.endpoints.get('default', endpoint.id)).toMatchObject({
      disabledReason: 'failing',
    });
    expect(await hooks.services.log.get(first)).toMatchObject({
      status: 'failed',
      finalReason: 'endpoint_disabled',
    });
    await waitUntil('the endpoint.disabled event', () => typesAt('/ops').includes('endpoint.disabled'));

    const secondEvent = await hooks.publishModeration();
    expect(await hooks.services.log.get(deliveryIdFor(secondEvent, endpoint.id))).toMatchObject({
      status: 'failed',
    });
    expect(receiver.at('/failing')).toHaveLength(11);

    isUp = true;
    await hooks.services.endpoints.setEnabled('default', endpoint.id, true, harnessActor);
    const { replayed } = await hooks.services.dispatcher.replayFailedSince(
      'default',
      endpoint.id,
      startedAt,
      harnessActor,
    );
    expect(replayed).toBe(2);
    const delivered = await waitUntil('the replayed backlog', () => {
      const found = receiver.at('/failing').slice(11);
      return found.length === 2 ? found : undefined;
    });
    expect(new Set(delivered.map((request) => request.headers['webhook-id']))).toEqual(
      new Set([firstEvent, secondEvent]),
    );
    expect(delivered.every((request) => isSignedWith(secret, request))).toBe(true);
    await waitUntil('both deliveries delivered', async () => {
      const states = await Promise.all(
        [first, deliveryIdFor(secondEvent, endpoint.id)].map((id) => hooks!.services.log.get(id)),
      );
      return states.every((delivery) => delivery?.status === 'delivered');
    });
  });

  it('keeps an endpoint enabled through a two-hour outage and forgets the streak on success', async () => {
    hooks = await startWebhookHarness({ settings: { schedule: Array(7).fill(hour), jitter: 0 } });
    const { endpoint } = await hooks.createEndpoint(receiver.url('/failing'));
    const delivery = deliveryIdFor(await hooks.publishModeration(), endpoint.id);
    await hooks.waitForAttempts(delivery, 1);
    await hooks.runNextAttempt(delivery);
    await hooks.runNextAttempt(delivery);
    const during = await hooks.services.endpoints.get('default', endpoint.id);
    expect(during).toMatchObject({ isEnabled: true, health: { lastErrorClass: 'server_error' } });
    expect(Date.parse(during!.health.lastFailureAt!) - Date.parse(during!.health.failingSince!)).toBe(
      2 * hour,
    );

    isUp = true;
    expect(await hooks.runNextAttempt(delivery)).toMatchObject({ status: 'delivered', attemptCount: 4 });
    expect(await hooks.services.endpoints.get('default', endpoint.id)).toMatchObject({
      isEnabled: true,
      health: {},
    });
  });
});

describe('headers and secret rotation (W2)', () => {
  let hooks: WebhookHarness;

  beforeAll(async () => {
    hooks = await startWebhookHarness();
  });

  afterAll(async () => {
    await hooks.stop();
  });

  beforeEach(() => {
    receiver.requests.length = 0;
    receiver.handler = answerOk;
    hooks.clock.set(Date.now());
  });

  it(`sends exactly the three webhook headers, integer-second timestamps, verifiable, on ${inspectedCount} deliveries`, async () => {
    const { secret } = await hooks.createEndpoint(receiver.url('/headers'));
    for (let i = 0; i < inspectedCount; i++) await hooks.publishModeration();
    const requests = await waitUntil(
      `${inspectedCount} deliveries`,
      () => receiver.requests.length >= inspectedCount && receiver.requests,
    );
    for (const request of requests) {
      expect(
        Object.keys(request.headers)
          .filter((name) => name.startsWith('webhook-'))
          .sort(),
      ).toEqual(['webhook-id', 'webhook-signature', 'webhook-timestamp']);
      expect(request.headers['webhook-timestamp']).toMatch(/^\d{10}$/);
      expect(request.headers['content-type']).toBe('application/json');
    }
    expect(requests.filter((request) => verifiesWith(secret, request))).toHaveLength(inspectedCount);
    expect(new Set(requests.map((request) => request.headers['webhook-id'])).size).toBe(inspectedCount);
  });

  it('signs with both secrets during the overlap window and with the new one alone afterwards', async () => {
    const { endpoint, secret: previous } = await hooks.createEndpoint(receiver.url('/rotating'));
    const rotated = await hooks.services.endpoints.rotateSecret('default', endpoint.id, hour, harnessActor);
    const current = rotated!.secret;
    await hooks.publishModeration();
    const [during] = await waitUntil(
      'a delivery in the overlap',
      () => receiver.at('/rotating').length === 1 && receiver.at('/rotating'),
    );
    expect(String(during!.headers['webhook-signature']).split(' ')).toHaveLength(2);
    expect([verifiesWith(previous, during!), verifiesWith(current, during!)]).toEqual([true, true]);

    hooks.clock.set(Date.now() + hour + 1_000);
    await hooks.publishModeration();
    const after = await waitUntil('a delivery after the overlap', () => receiver.at('/rotating')[1]);
    expect(String(after.headers['webhook-signature']).split(' ')).toHaveLength(1);
    expect([isSignedWith(previous, after), isSignedWith(current, after)]).toEqual([false, true]);
  });
  it('publishes a redelivered moderation once: one delivery, one request, byte-identical body', async () => {
    const { endpoint } = await hooks.createEndpoint(receiver.url('/once'));
    const record = madeUpModeration('default', 'completed');
    await Promise.all(Array.from({ length: 5 }, () => hooks.services.dispatcher.publishModeration(record)));
    const [first] = await waitUntil(
      'the delivery',
      () => receiver.at('/once').length > 0 && receiver.at('/once'),
    );
    await hooks.services.dispatcher.publishModeration({ ...record, attempts: 2 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(receiver.at('/once')).toHaveLength(1);
    const deliveryId = deliveryIdFor(String(first!.headers['webhook-id']), endpoint.id);
    expect(await hooks.services.log.get(deliveryId)).toMatchObject({ status: 'delivered', attemptCount: 1 });
    const stored = await hooks.services.log.eventBody(String(first!.headers['webhook-id']));
    expect(Buffer.from(stored!).equals(first!.body)).toBe(true);
  });
});
