import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer, type Server } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HostLookup } from '../../shared/net/index.ts';
import { canonicalHost, forbiddenSpellings, urlsOf } from '../helpers/address-spellings.ts';
import { solidImage } from '../helpers/images.ts';
import { builtModel } from '../helpers/models.ts';
import { type ServiceHarness, startService } from '../helpers/service-harness.ts';
import { type SocketTrap, startSocketTrap } from '../helpers/socket-trap.ts';
import { type Receiver, startReceiver, waitUntil } from '../helpers/webhook-receiver.ts';
import { sized } from './chaos-deployment.ts';

// RELIABILITY.md S1–S3 and S5 through the real service, on both outbound clients: the API's image-URL
// intake and the webhook endpoints (at registration and at send time). The allow-list opens only
// 127.0.0.1; the "forbidden" destination is a canary on 127.0.0.2 listening on the same ports as the
// allowed test hosts, so a rebinding or redirect that slipped through would land there. Names resolve
// through a lookup injected into the service; a socket trap destroys, before connect(2), any socket of
// this process (net or tls, literal or resolved) bound anywhere but 127.0.0.1.

const allowed = '127.0.0.1';
const forbidden = '127.0.0.2';
let service: ServiceHarness;
let imageHost: HttpServer;
let receiver: Receiver;
const canaries: Server[] = [];
let canaryHits = 0;
let trap: SocketTrap;
let port = 0;
let rebindCalls = 0;
let hooksAddress = allowed;

/** Names the tests use; anything else does not resolve. */
const lookup: HostLookup = async (name) => {
  // A resolver treats `name.` (fully qualified) and `name` alike.
  const hostname = name.replace(/\.$/, '');
  const answer = (address: string) => [{ address, family: 4 }];
  if (hostname === 'images.test') return answer(allowed);
  if (hostname === 'canary.test') return answer(forbidden);
  if (hostname === 'both.test') return [...answer(allowed), ...answer(forbidden)];
  // TTL 0 rebinding: every other answer is the canary.
  if (hostname === 'rebind.test') return answer(rebindCalls++ % 2 === 0 ? allowed : forbidden);
  if (hostname === 'hooks.test') return answer(hooksAddress);
  throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
};

/** A canary on 127.0.0.2 at `canaryPort`: any connection to it is a failure of the SSRF defence. */
async function listenCanary(canaryPort: number): Promise<void> {
  const canary = createServer((socket) => {
    canaryHits += 1;
    socket.destroy();
  });
  await new Promise<void>((resolve) => canary.listen(canaryPort, forbidden, resolve));
  canaries.push(canary);
}

beforeAll(async () => {
  trap = startSocketTrap([allowed]);
  const red = await solidImage('png', 64, 48, [230, 20, 20]);
  imageHost = createHttpServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://images.test');
    if (url.pathname === '/redirect') {
      response.writeHead(302, { location: url.searchParams.get('to') ?? '/' }).end();
    } else if (url.pathname === '/endless') {
      response.writeHead(200, { 'content-type': 'image/png' });
      const chunk = Buffer.alloc(64 * 1024, 1);
      const pump = () => {
        while (response.write(chunk));
      };
      response.on('drain', pump);
      pump();
    } else if (url.pathname === '/declared-huge') {
      response.writeHead(200, { 'content-length': String(10 * 2 ** 30) }).write(red);
    } else response.writeHead(200, { 'content-type': 'image/png' }).end(red);
  });
  await new Promise<void>((resolve) => imageHost.listen(0, allowed, resolve));
  port = (imageHost.address() as { port: number }).port;
  await listenCanary(port);
  receiver = await startReceiver();
  await listenCanary(Number(new URL(receiver.url('/')).port));
  service = await startService({
    roles: ['api', 'inference', 'webhooks'],
    lookup,
    env: {
      MODEL_DIR: await builtModel('color'),
      CLIPMOD_ALLOW_PRIVATE_NETWORKS: `${allowed}/32`,
      CLIPMOD_MAX_IMAGE_BYTES: '2000000',
      CLIPMOD_WEBHOOK_RETRY_SCHEDULE_MS: '200,200',
    },
  });
  const put = await service.request('/v1/policies/default', {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      labels: [{ id: 'red', prompts: ['a red image'], threshold: 0.5, action: 'block' }],
      baseline: ['a green image', 'a blue image'],
    }),
  });
  expect(put.status).toBe(201);
}, 120_000);

afterAll(async () => {
  trap?.stop();
  await service?.stop();
  await receiver?.stop();
  imageHost?.closeAllConnections();
  imageHost?.close();
  for (const canary of canaries) canary.close();
  expect(trap?.trapped).toEqual([]);
});

async function post(path: string, body: unknown): Promise<{ status: number; body: Record<string, any> }> {
  const response = await service.request(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Record<string, any> };
}

const moderateUrl = (url: string) => post('/v1/moderations?wait=20000', { image: { url } });

/** Every spelling of the canary's address a URL parser or resolver might accept. */
const canarySpellings = (p: number) => [
  `http://${forbidden}:${p}/`,
  `http://2130706434:${p}/`,
  `http://0177.0.0.2:${p}/`,
  `http://0x7f000002:${p}/`,
  `http://0x7f.0.0.2:${p}/`,
  `http://127.2:${p}/`,
  `http://127.000.000.002:${p}/`,
  `http://[::ffff:127.0.0.2]:${p}/`,
  `http://[::ffff:7f00:2]:${p}/`,
  `http://[::1]:${p}/`,
  `http://[0:0:0:0:0:0:0:1]:${p}/`,
  `http://canary.test:${p}/`,
  `http://canary.test.:${p}/`,
  `http://both.test:${p}/`,
];

describe('S1: address spellings, on the image-URL intake and at webhook registration', () => {
  it('reaches the allow-listed host by literal and by name (the positive control)', async () => {
    expect((await moderateUrl(`http://${allowed}:${port}/red.png`)).body.verdict?.action).toBe('block');
    expect((await moderateUrl(`http://images.test:${port}/red.png`)).body.verdict?.action).toBe('block');
  });

  it('refuses every spelling of the canary with url_forbidden and never connects to it', async () => {
    for (const url of canarySpellings(port)) {
      const viaIntake = await moderateUrl(url);
      expect(viaIntake.body.code, `intake ${url}`).toBe('url_forbidden');
      const viaEndpoint = await post('/v1/webhook-endpoints', { url: `${url}hooks` });
      expect(viaEndpoint.body.code, `endpoint ${url}`).toBe('url_forbidden');
      expect(viaEndpoint.status).toBe(400);
    }
    expect(canaryHits).toBe(0);
  });
});

describe('S1: generated spellings of the canary, on the image-URL intake and at webhook registration', () => {
  it(`answers ${sized(20, 200)} generated spellings with one uniform 400 url_forbidden on both`, async () => {
    const answers = new Set<string>();
    const startedAt = performance.now();
    await fc.assert(
      fc.asyncProperty(urlsOf(forbiddenSpellings, port), async ({ url, target }) => {
        for (const [client, response] of [
          ['intake', await moderateUrl(url)],
          ['endpoint', await post('/v1/webhook-endpoints', { url })],
        ] as const) {
          const { status, body } = response;
          expect(body.code, `${client} ${url}`).toBe('url_forbidden');
          // The answer names no address: a refusal must not tell the caller what a spelling meant.
          expect(JSON.stringify(body), `${client} ${url}`).not.toContain(
            canonicalHost(target).replace(/[[\]]/g, ''),
          );
          answers.add(`${status} ${body.code} ${body.reason}`);
        }
      }),
      { numRuns: sized(20, 200) },
    );
    expect([...answers]).toEqual(['400 url_forbidden forbidden_address']);
    expect(canaryHits).toBe(0);
    expect(trap.trapped).toEqual([]);
    const ms = Math.round(performance.now() - startedAt);
    process.stderr.write(
      `[chaos] S1 ${sized(20, 200)} generated spellings × 2 routes: ${[...answers]}, ${ms} ms\n`,
    );
  });
});

describe('S2: DNS rebinding on the image-URL intake', () => {
  it('connects only to the address it checked, whichever answer a TTL-0 name gives', async () => {
    const outcomes: Record<string, number> = {};
    for (let n = 0; n < sized(20, 1_000); n++) {
      const { body } = await moderateUrl(`http://rebind.test:${port}/red.png`);
      const outcome = body.verdict?.action ?? body.code;
      outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
    }
    // Both answers were exercised: the allowed one was fetched, the canary one refused before connect.
    expect(Object.keys(outcomes).sort()).toEqual(['block', 'url_forbidden']);
    expect(canaryHits).toBe(0);
    process.stderr.write(`[chaos] S2 ${JSON.stringify(outcomes)}\n`);
  });
});

describe('S3 and S4: redirects and caps on the image-URL intake', () => {
  it('refuses redirects to the canary, to other schemes and past 3 hops; follows a short allowed chain', async () => {
    const hop = (to: string) => `http://${allowed}:${port}/redirect?to=${encodeURIComponent(to)}`;
    const refused = [
      hop(`http://${forbidden}:${port}/`),
      hop(`http://canary.test:${port}/`),
      hop(`http://[::ffff:127.0.0.2]:${port}/`),
      hop('file:///etc/passwd'),
      hop(`gopher://${allowed}:${port}/_`),
      hop('data:image/png;base64,AAAA'),
      hop(hop(hop(hop(hop(hop(`http://${allowed}:${port}/red.png`)))))),
    ];
    for (const url of refused) {
      const { status, body } = await moderateUrl(url);
      expect(status, url).toBeGreaterThanOrEqual(400);
      expect(status, url).toBeLessThan(500);
      expect(['url_forbidden', 'url_fetch_failed'], url).toContain(body.code);
    }
    expect((await moderateUrl(hop(hop(`http://images.test:${port}/red.png`)))).body.verdict?.action).toBe(
      'block',
    );
    expect(canaryHits).toBe(0);
  });

  it('cuts an endless body and a 10 GB Content-Length at the image limit', async () => {
    for (const path of ['/endless', '/declared-huge']) {
      const startedAt = performance.now();
      const { body } = await moderateUrl(`http://${allowed}:${port}${path}`);
      expect(body.code, path).toBe('image_too_large');
      expect(performance.now() - startedAt, path).toBeLessThan(5_000);
    }
  });
});

describe('S3 and S5 on the webhook client: send-time checks', () => {
  it('blocks a delivery whose host resolves to a forbidden address after registration, and follows no redirect', async () => {
    const receiverPort = new URL(receiver.url('/')).port;
    hooksAddress = allowed;
    const created = await post('/v1/webhook-endpoints', { url: `http://hooks.test:${receiverPort}/hooks` });
    expect(created.status).toBe(201);
    const redirecting = await post('/v1/webhook-endpoints', {
      url: `http://${allowed}:${port}/redirect?to=${encodeURIComponent(`http://${forbidden}:${port}/`)}`,
    });
    expect(redirecting.status).toBe(201);
    hooksAddress = forbidden;
    const red = Buffer.from(await solidImage('png', 64, 48, [231, 20, 20])).toString('base64');
    expect((await post('/v1/moderations?wait=20000', { image: { base64: red } })).status).toBe(200);

    const attemptsOf = async (id: string) => {
      const response = await service.request(`/v1/webhook-endpoints/${id}/deliveries`);
      const { data } = (await response.json()) as { data: { attempts: Record<string, unknown>[] }[] };
      return data.flatMap((delivery) => delivery.attempts);
    };
    const blocked = await waitUntil('a blocked attempt', async () => {
      const attempts = await attemptsOf(created.body.id);
      return attempts.length > 0 ? attempts : undefined;
    });
    expect(blocked[0]).toMatchObject({ outcome: 'failed', errorClass: 'forbidden_address' });
    const redirected = await waitUntil('a redirected attempt', async () => {
      const attempts = await attemptsOf(redirecting.body.id);
      return attempts.length > 0 ? attempts : undefined;
    });
    expect(JSON.stringify(redirected)).toContain('302');
    const endpoint = (await (await service.request(`/v1/webhook-endpoints/${created.body.id}`)).json()) as {
      health: Record<string, unknown>;
    };
    // Flagged for its owner: the endpoint's health names the block.
    expect(endpoint.health).toMatchObject({
      lastErrorClass: 'forbidden_address',
      blockedAt: expect.any(String),
    });
    expect(receiver.requests.length).toBe(0);
    expect(canaryHits).toBe(0);
  });
});
