import diagnosticsChannel from 'node:diagnostics_channel';
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { HostLookup } from '../../shared/net/index.ts';
import { deliveryIdFor } from '../../shared/webhooks/index.ts';
import { harnessActor, startWebhookHarness, type WebhookHarness } from '../helpers/webhook-harness.ts';
import { answerOk, type ReceivedRequest, type Receiver, startReceiver } from '../helpers/webhook-receiver.ts';

// RELIABILITY W4 (timeouts, 3xx), W6 and S5 for the webhook client. Network rule: every receiver and
// canary is on 127.0.0.1; "private" targets are made-up names whose injected lookup answers 10.0.0.7,
// and a socket trap destroys (and records) any client socket whose resolution lands off loopback.

// Scaled down for `npm test`: a 1 s attempt limit. CLIPMOD_WEBHOOK_FULL_SIZE=1 uses production's 15 s.
const timeoutMs = process.env.CLIPMOD_WEBHOOK_FULL_SIZE === '1' ? 15_000 : 1_000;
const privateName = 'hooks.example.test';

let receiver: Receiver;
let canary: Receiver;
let hooks: WebhookHarness;
let answerFor: Record<string, string[]> = {};
let offLoopbackAttempts: string[] = [];
const stopHostile: (() => void)[] = [];
let hugeBytesWritten = 0;

const fakeDns: HostLookup = async (hostname) => {
  const addresses = answerFor[hostname];
  if (!addresses) throw Object.assign(new Error(`no such host ${hostname}`), { code: 'ENOTFOUND' });
  return addresses.map((address) => ({ address, family: 4 }));
};

function trapClientSocket(message: unknown): void {
  const { socket } = message as { socket: Socket };
  socket.on('lookup', (_error: Error | null, address: string) => {
    if (address !== undefined && !address.startsWith('127.')) {
      offLoopbackAttempts.push(address);
      socket.destroy();
    }
  });
}

function hostile(request: ReceivedRequest, response: ServerResponse): void {
  const url = new URL(request.path, 'http://receiver');
  if (url.pathname === '/sleep') {
    stopHostile.push(() => response.destroy());
  } else if (url.pathname === '/drip') {
    response.writeHead(200);
    const timer = setInterval(() => response.write('.'), 100);
    response.on('close', () => clearInterval(timer));
    stopHostile.push(() => clearInterval(timer));
  } else if (url.pathname === '/never-ends') {
    response.writeHead(200, { 'content-length': '100' }).write('ten bytes.');
    stopHostile.push(() => response.destroy());
  } else if (url.pathname === '/huge') {
    streamGigabyte(response);
  } else if (url.pathname === '/redirect') {
    const status = Number(url.searchParams.get('status'));
    response.writeHead(status, { location: canary.url('/internal') }).end('moved');
  } else {
    answerOk(request, response);
  }
}

/** Writes up to 1 GB with back-pressure, stopping as soon as the client goes away. */
function streamGigabyte(response: ServerResponse): void {
  const chunk = Buffer.alloc(64 * 1024, 120);
  response.writeHead(200, { 'content-type': 'text/plain' });
  const pump = () => {
    while (hugeBytesWritten < 1 << 30 && !response.destroyed) {
      hugeBytesWritten += chunk.length;
      if (!response.write(chunk)) {
        response.once('drain', pump);
        return;
      }
    }
    response.end();
  };
  pump();
}

beforeAll(async () => {
  receiver = await startReceiver(hostile);
  canary = await startReceiver();
  diagnosticsChannel.subscribe('net.client.socket', trapClientSocket);
  hooks = await startWebhookHarness({ settings: { timeoutMs, lookup: fakeDns }, concurrency: 8 });
});

afterAll(async () => {
  diagnosticsChannel.unsubscribe('net.client.socket', trapClientSocket);
  await hooks?.stop();
  await Promise.all([receiver?.stop(), canary?.stop()]);
});

beforeEach(() => {
  offLoopbackAttempts = [];
  answerFor = {};
});

afterEach(() => {
  for (const stop of stopHostile.splice(0)) stop();
  expect(offLoopbackAttempts).toEqual([]);
  expect(canary.requests).toEqual([]);
});

/** Sends one event to a fresh endpoint at `url` and returns its first attempt. */
async function firstAttemptAt(url: string) {
  const { endpoint } = await hooks.createEndpoint(url);
  const deliveryId = deliveryIdFor(await hooks.publishModeration(), endpoint.id);
  const delivery = await hooks.waitForAttempts(deliveryId, 1, timeoutMs * 3 + 5_000);
  const [attempt] = await hooks.services.log.attempts(deliveryId);
  await hooks.services.endpoints.remove('default', endpoint.id, harnessActor);
  return { delivery, attempt: attempt!, endpoint };
}

describe('hostile receivers', () => {
  it.each(['/sleep', '/drip', '/never-ends'])(
    'aborts %s at the attempt limit and retries it as a timeout',
    async (path) => {
      const { delivery, attempt } = await firstAttemptAt(receiver.url(path));
      expect(attempt).toMatchObject({ outcome: 'failed', errorClass: 'timeout' });
      expect(attempt.latencyMs).toBeGreaterThanOrEqual(timeoutMs - 5);
      expect(attempt.latencyMs).toBeLessThanOrEqual(timeoutMs + 500);
      expect(delivery).toMatchObject({ status: 'pending', lastErrorClass: 'timeout' });
    },
  );

  it('reads at most 64 KB of a 1 GB answer, logs 4 KB of it and counts the 200 as delivered', async () => {
    hugeBytesWritten = 0;
    const rssBefore = process.memoryUsage().rss;
    const { delivery, attempt } = await firstAttemptAt(receiver.url('/huge'));
    const rssGrowthBytes = process.memoryUsage().rss - rssBefore;
    expect(delivery.status).toBe('delivered');
    expect(attempt).toMatchObject({ outcome: 'delivered', httpStatus: 200, isResponseTruncated: true });
    expect(Buffer.byteLength(attempt.response)).toBeLessThanOrEqual(4_096);
    expect(attempt.latencyMs).toBeLessThan(timeoutMs);
    // What the server wrote before the client hung up: socket buffers, never the gigabyte.
    expect(hugeBytesWritten).toBeLessThan(16 * 1024 * 1024);
    expect(rssGrowthBytes).toBeLessThan(20 * 1024 * 1024);
  });

  it.each([301, 302, 303, 307, 308])(
    'treats %i as a failure and never follows it to the canary',
    async (status) => {
      const { attempt } = await firstAttemptAt(receiver.url(`/redirect?status=${status}`));
      expect(attempt).toMatchObject({ outcome: 'failed', httpStatus: status, errorClass: 'redirect' });
    },
  );

  it('keeps delivering to healthy endpoints while slow ones hold their attempts', async () => {
    const slow = await Promise.all(
      ['/sleep', '/drip', '/never-ends', '/sleep'].map((path) =>
        hooks.services.endpoints.create(
          {
            tenant: 'default',
            url: receiver.url(path),
            eventTypes: ['moderation.failed'],
            description: 'slow',
            isEnabled: true,
          },
          harnessActor,
        ),
      ),
    );
    const healthy = await hooks.createEndpoint(receiver.url('/healthy'));
    const slowStartedAt = Date.now();
    await hooks.publishModeration({ status: 'failed' });
    const latenciesMs: number[] = [];
    for (let i = 0; i < 20; i++) {
      const sentAt = Date.now();
      const before = receiver.at('/healthy').length;
      await hooks.publishModeration();
      while (receiver.at('/healthy').length === before)
        await new Promise((resolve) => setTimeout(resolve, 2));
      latenciesMs.push(Date.now() - sentAt);
    }
    const healthyDoneAt = Date.now();
    latenciesMs.sort((a, b) => a - b);
    const p99 = latenciesMs[Math.ceil(latenciesMs.length * 0.99) - 1]!;
    console.log(`[webhooks] healthy delivery p99 with 4 slow receivers in flight: ${p99} ms`);
    expect(healthyDoneAt - slowStartedAt).toBeLessThan(timeoutMs);
    expect(p99).toBeLessThan(250);
    for (const { endpoint } of [...slow, healthy])
      await hooks.services.endpoints.remove('default', endpoint.id, harnessActor);
  });
});

describe('address checks at every send (S5)', () => {
  it('delivers while the name resolves to an allowed address and blocks it, without connecting, once it resolves privately', async () => {
    answerFor = { [privateName]: ['127.0.0.1'] };
    const url = `http://${privateName}:${receiver.port}/rebinding`;
    const { endpoint } = await hooks.createEndpoint(url);
    const first = deliveryIdFor(await hooks.publishModeration(), endpoint.id);
    expect(await hooks.waitForAttempts(first, 1)).toMatchObject({ status: 'delivered' });

    for (const answers of [['10.0.0.7'], ['127.0.0.1', '10.0.0.7']]) {
      answerFor = { [privateName]: answers };
      const blocked = deliveryIdFor(await hooks.publishModeration(), endpoint.id);
      expect(await hooks.waitForAttempts(blocked, 1)).toMatchObject({
        status: 'pending',
        lastErrorClass: 'forbidden_address',
      });
    }
    expect(receiver.at('/rebinding')).toHaveLength(1);
    const flagged = await hooks.services.endpoints.get('default', endpoint.id);
    expect(flagged?.health.blockedAt).toBeDefined();
    expect(flagged?.health.lastErrorClass).toBe('forbidden_address');
    await hooks.services.endpoints.remove('default', endpoint.id, harnessActor);
  });

  it('refuses loopback at send time when it is not allow-listed', async () => {
    const strict = await startWebhookHarness({ settings: { allowList: [] } });
    try {
      const { endpoint } = await strict.createEndpoint(canary.url('/loopback'));
      const deliveryId = deliveryIdFor(await strict.publishModeration(), endpoint.id);
      expect(await strict.waitForAttempts(deliveryId, 1)).toMatchObject({
        lastErrorClass: 'forbidden_address',
      });
      const [attempt] = await strict.services.log.attempts(deliveryId);
      expect(attempt?.response).toMatch(/loopback address/);
    } finally {
      await strict.stop();
    }
  });
});
