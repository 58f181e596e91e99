import diagnosticsChannel from 'node:diagnostics_channel';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { isClipmodError } from '../../shared/errors/index.ts';
import {
  type HostLookup,
  imageFetchDefaults,
  parseCidrList,
  safeFetch,
  webhookFetchDefaults,
} from '../../shared/net/index.ts';
import { type SocketTrap, startSocketTrap } from '../helpers/socket-trap.ts';

// Network rule: only loopback ever receives a connection. Every forbidden target below is either a
// loopback literal or a made-up name whose injected lookup answers a private address; the socket trap
// destroys any client socket bound anywhere but 127.0.0.1 before connect, so even a policy bug cannot
// leak (literal hosts and TLS included).

const loopbackAllowed = parseCidrList('127.0.0.0/8');
const bigBodyBytes = 256 * 1024;

let server: http.Server;
let port: number;
let serverConnections = 0;
let clientSockets = 0;
let trap: SocketTrap;
let trappedBefore = 0;

function countClientSocket(): void {
  clientSockets += 1;
}

function handle(request: http.IncomingMessage, response: http.ServerResponse): void {
  const url = new URL(request.url ?? '/', 'http://canary');
  const chunks: Buffer[] = [];
  request.on('data', (chunk: Buffer) => chunks.push(chunk));
  request.on('end', () => {
    if (url.pathname === '/redirect') {
      response.writeHead(Number(url.searchParams.get('status') ?? 302), {
        location: url.searchParams.get('to') ?? '/',
      });
      response.end('moved');
    } else if (url.pathname === '/echo') {
      const { method, headers } = request;
      response.end(
        JSON.stringify({ method, host: headers.host, headers, body: Buffer.concat(chunks).toString() }),
      );
    } else if (url.pathname === '/big' || url.pathname === '/big-declared') {
      const declared = url.pathname === '/big-declared' ? { 'content-length': String(bigBodyBytes) } : {};
      response.writeHead(200, declared);
      for (let sent = 0; sent < bigBodyBytes; sent += 16 * 1024) response.write(Buffer.alloc(16 * 1024, 120));
      response.end();
    } else if (url.pathname === '/exact') {
      response.end(Buffer.alloc(Number(url.searchParams.get('bytes')), 120));
    } else if (url.pathname === '/slow-body') {
      response.writeHead(200);
      response.write('first bytes');
    } else if (url.pathname === '/slow-headers') {
      // Never answers; the client's header timeout has to end it.
    } else if (url.pathname === '/status') {
      response.writeHead(Number(url.searchParams.get('code'))).end('status page');
    } else {
      response.end('canary');
    }
  });
}

beforeAll(async () => {
  server = http.createServer(handle);
  server.on('connection', () => {
    serverConnections += 1;
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
  diagnosticsChannel.subscribe('net.client.socket', countClientSocket);
  trap = startSocketTrap(['127.0.0.1']);
});

afterAll(async () => {
  diagnosticsChannel.unsubscribe('net.client.socket', countClientSocket);
  trap.stop();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

beforeEach(() => {
  serverConnections = 0;
  clientSockets = 0;
  trappedBefore = trap.trapped.length;
});

afterEach(() => {
  expect(trap.trapped.slice(trappedBefore)).toEqual([]);
});

async function failureOf(promise: Promise<unknown>) {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  if (!isClipmodError(error)) throw new Error(`expected a ClipmodError, got ${String(error)}`);
  return { code: error.code, ...error.details };
}

/** A resolver for made-up names; records each question so tests can count resolutions. */
function fakeDns(answers: Record<string, string[]>): HostLookup & { questions: string[] } {
  const questions: string[] = [];
  const lookup = async (hostname: string) => {
    questions.push(hostname);
    const addresses = answers[hostname];
    if (addresses === undefined)
      throw Object.assign(new Error(`no such host ${hostname}`), { code: 'ENOTFOUND' });
    return addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
  return Object.assign(lookup, { questions });
}

describe('safeFetch refuses forbidden targets before connecting', () => {
  it.each([
    'http://127.0.0.1:PORT/',
    'http://2130706433:PORT/',
    'http://0x7f.1:PORT/',
    'http://0177.0.0.1:PORT/',
    'http://127.1:PORT/',
    'http://127.0.0.1.:PORT/',
    'http://[::ffff:127.0.0.1]:PORT/',
    'http://[::1]:PORT/',
    'http://0.0.0.0:PORT/',
    'http://0:PORT/',
    'http://localhost:PORT/',
    'http://LocalHost:PORT/',
  ])('%s is url_forbidden and the canary sees no connection', async (template) => {
    const failure = await failureOf(safeFetch(template.replace('PORT', String(port))));
    expect(failure).toMatchObject({ code: 'url_forbidden', reason: 'forbidden_address' });
    expect(clientSockets).toBe(0);
    expect(serverConnections).toBe(0);
  });

  it.each([
    ['10.0.0.5', 'private'],
    ['169.254.169.254', 'metadata'],
    ['fd00:ec2::254', 'metadata'],
    ['::ffff:10.0.0.5', 'private'],
    ['100.64.1.1', 'cgnat'],
  ])('a name resolving to %s is refused as %s without opening a socket', async (address, category) => {
    const lookup = fakeDns({ 'images.customer.test': [address] });
    const failure = await failureOf(safeFetch(`http://images.customer.test:${port}/`, { lookup }));
    expect(failure).toMatchObject({ code: 'url_forbidden', reason: 'forbidden_address', category, hop: 0 });
    expect(lookup.questions).toEqual(['images.customer.test']);
    expect(clientSockets).toBe(0);
  });

  it('refuses a name when any one of its addresses is forbidden, even if another is allowed', async () => {
    const lookup = fakeDns({ 'rebind.test': ['127.0.0.1', '10.0.0.5'] });
    const failure = await failureOf(
      safeFetch(`http://rebind.test:${port}/`, { lookup, allowList: loopbackAllowed }),
    );
    expect(failure).toMatchObject({ code: 'url_forbidden', category: 'private' });
    expect(clientSockets).toBe(0);
    expect(serverConnections).toBe(0);
  });

  it('keeps metadata addresses closed under an allow-list of everything', async () => {
    const lookup = fakeDns({ 'metadata.test': ['169.254.169.254'] });
    const allowList = parseCidrList('0.0.0.0/0, ::/0');
    const failure = await failureOf(safeFetch(`http://metadata.test:${port}/`, { lookup, allowList }));
    expect(failure).toMatchObject({ code: 'url_forbidden', category: 'metadata' });
    expect(clientSockets).toBe(0);
  });

  it.each(['file:///etc/passwd', 'gopher://127.0.0.1:70/_x', 'ftp://127.0.0.1/x', 'data:text/plain,hi'])(
    'refuses the non-http URL %s',
    async (url) => {
      expect(await failureOf(safeFetch(url))).toMatchObject({ code: 'url_forbidden', reason: 'scheme' });
      expect(clientSockets).toBe(0);
    },
  );

  it('refuses an unparseable URL, such as an IPv6 literal with a zone id', async () => {
    const failure = await failureOf(safeFetch(`http://[fe80::1%25eth0]:${port}/`));
    expect(failure).toMatchObject({ code: 'url_forbidden', reason: 'invalid_url' });
  });
});

describe('safeFetch with loopback allow-listed', () => {
  it('reaches the loopback server and reports the address it connected to', async () => {
    const response = await safeFetch(`http://0x7f.1:${port}/`, { allowList: loopbackAllowed });
    expect(response).toMatchObject({ status: 200, address: '127.0.0.1', url: `http://127.0.0.1:${port}/` });
    expect(response.body.toString()).toBe('canary');
    expect(serverConnections).toBe(1);
  });

  it('resolves a name once, connects to the checked address and still sends the name as Host', async () => {
    const lookup = fakeDns({ 'hooks.customer.test': ['127.0.0.1'] });
    const response = await safeFetch(`http://hooks.customer.test:${port}/echo`, {
      lookup,
      allowList: loopbackAllowed,
    });
    expect(JSON.parse(response.body.toString()).host).toBe(`hooks.customer.test:${port}`);
    expect(response.address).toBe('127.0.0.1');
    expect(lookup.questions).toEqual(['hooks.customer.test']);
  });

  it('does not let an IPv4 allow-list open the IPv6 loopback', async () => {
    const failure = await failureOf(safeFetch(`http://[::1]:${port}/`, { allowList: loopbackAllowed }));
    expect(failure).toMatchObject({ code: 'url_forbidden', category: 'loopback' });
  });

  it('reports a refused connection as url_fetch_failed with reason network', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const closedPort = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const failure = await failureOf(
      safeFetch(`http://127.0.0.1:${closedPort}/`, { allowList: loopbackAllowed }),
    );
    expect(failure).toMatchObject({ code: 'url_fetch_failed', reason: 'network', errorCode: 'ECONNREFUSED' });
  });

  it('reports a name that does not resolve as url_fetch_failed with reason dns', async () => {
    const failure = await failureOf(safeFetch('http://missing.test/', { lookup: fakeDns({}) }));
    expect(failure).toMatchObject({ code: 'url_fetch_failed', reason: 'dns', errorCode: 'ENOTFOUND' });
  });
});

describe('safeFetch redirects', () => {
  const redirectTo = (target: string, status = 302) =>
    `http://127.0.0.1:${port}/redirect?status=${status}&to=${encodeURIComponent(target)}`;

  it('returns a redirect unfollowed by default', async () => {
    const response = await safeFetch(redirectTo('/echo'), { allowList: loopbackAllowed });
    expect(response.status).toBe(302);
    expect(response.headers.location).toBe('/echo');
    expect(serverConnections).toBe(1);
  });

  it('follows allowed hops up to maxRedirects, checking each one', async () => {
    const response = await safeFetch(redirectTo(redirectTo('/echo')), {
      ...imageFetchDefaults,
      allowList: loopbackAllowed,
    });
    expect(response.status).toBe(200);
    expect(response.url).toBe(`http://127.0.0.1:${port}/echo`);
    expect(JSON.parse(response.body.toString()).method).toBe('GET');
  });

  it('refuses a hop to a name that resolves to a private address', async () => {
    const lookup = fakeDns({ 'internal.corp.test': ['10.0.0.5'] });
    const options = { ...imageFetchDefaults, allowList: loopbackAllowed, lookup };
    const failure = await failureOf(
      safeFetch(redirectTo(`http://internal.corp.test:${port}/admin`), options),
    );
    expect(failure).toMatchObject({ code: 'url_forbidden', category: 'private', hop: 1 });
    expect(lookup.questions).toEqual(['internal.corp.test']);
    expect(clientSockets).toBe(1);
  });

  it('refuses a hop to a non-http scheme', async () => {
    const options = { ...imageFetchDefaults, allowList: loopbackAllowed };
    const failure = await failureOf(safeFetch(redirectTo('file:///etc/passwd'), options));
    expect(failure).toMatchObject({ code: 'url_forbidden', reason: 'scheme' });
  });

  it('gives up after maxRedirects hops', async () => {
    const chain = redirectTo(redirectTo(redirectTo('/echo')));
    const failure = await failureOf(safeFetch(chain, { allowList: loopbackAllowed, maxRedirects: 2 }));
    expect(failure).toMatchObject({ code: 'url_fetch_failed', reason: 'too_many_redirects', limit: 2 });
    expect(serverConnections).toBe(3);
  });

  it('turns a POST answered with 303 into a GET without a body', async () => {
    const options = { method: 'POST', body: '{"a":1}', maxRedirects: 1, allowList: loopbackAllowed };
    const response = await safeFetch(redirectTo('/echo', 303), options);
    expect(JSON.parse(response.body.toString())).toMatchObject({ method: 'GET', body: '' });
  });
});

describe('safeFetch limits', () => {
  const at = (path: string) => `http://127.0.0.1:${port}${path}`;

  it('aborts a streamed body past maxBytes with the caller-chosen code', async () => {
    const options = { ...imageFetchDefaults, allowList: loopbackAllowed, maxBytes: 20_000 };
    const failure = await failureOf(safeFetch(at('/big'), options));
    expect(failure).toMatchObject({ code: 'image_too_large', reason: 'too_large', limitBytes: 20_000 });
  });

  it('refuses a declared Content-Length past maxBytes as url_fetch_failed by default', async () => {
    const failure = await failureOf(
      safeFetch(at('/big-declared'), { allowList: loopbackAllowed, maxBytes: 1000 }),
    );
    expect(failure).toMatchObject({ code: 'url_fetch_failed', reason: 'too_large' });
  });

  it('accepts a body of exactly maxBytes', async () => {
    const response = await safeFetch(at('/exact?bytes=5000'), { allowList: loopbackAllowed, maxBytes: 5000 });
    expect(response).toMatchObject({ status: 200, isTruncated: false });
    expect(response.body.length).toBe(5000);
  });

  it('truncates a webhook response to 64 KiB instead of failing', async () => {
    const response = await safeFetch(at('/big'), { ...webhookFetchDefaults, allowList: loopbackAllowed });
    expect(response).toMatchObject({ status: 200, isTruncated: true });
    expect(response.body.length).toBe(64 * 1024);
  });

  it('posts a webhook body with its length and does not follow the redirect it gets back', async () => {
    const options = {
      ...webhookFetchDefaults,
      allowList: loopbackAllowed,
      headers: { 'Content-Type': 'application/json' },
    };
    const echoed = JSON.parse(
      (await safeFetch(at('/echo'), { ...options, body: '{"id":"m_1"}' })).body.toString(),
    );
    expect(echoed).toMatchObject({ method: 'POST', body: '{"id":"m_1"}' });
    expect(echoed.headers).toMatchObject({ 'content-length': '12', 'content-type': 'application/json' });
    const redirected = await safeFetch(at('/redirect?status=307&to=/echo'), { ...options, body: '{}' });
    expect(redirected.status).toBe(307);
  });

  it('fails on a non-2xx final status when asked to', async () => {
    const failure = await failureOf(
      safeFetch(at('/status?code=404'), { ...imageFetchDefaults, allowList: loopbackAllowed }),
    );
    expect(failure).toMatchObject({ code: 'url_fetch_failed', reason: 'http_status', status: 404 });
    const plain = await safeFetch(at('/status?code=404'), { allowList: loopbackAllowed });
    expect(plain.status).toBe(404);
  });

  it('aborts a body that trickles past the total timeout', async () => {
    const startedMs = Date.now();
    const failure = await failureOf(
      safeFetch(at('/slow-body'), { allowList: loopbackAllowed, timeoutMs: 300 }),
    );
    expect(failure).toMatchObject({ code: 'url_fetch_failed', reason: 'timeout', limitMs: 300 });
    expect(Date.now() - startedMs).toBeLessThan(2000);
  });

  it('aborts a server that never sends response headers', async () => {
    const options = { allowList: loopbackAllowed, headersTimeoutMs: 200, timeoutMs: 5000 };
    const startedMs = Date.now();
    const failure = await failureOf(safeFetch(at('/slow-headers'), options));
    expect(failure).toMatchObject({ code: 'url_fetch_failed', reason: 'headers_timeout', limitMs: 200 });
    expect(Date.now() - startedMs).toBeLessThan(2000);
  });

  it('stops waiting for a lookup that outlives the deadline', async () => {
    const neverAnswers: HostLookup = () => new Promise(() => {});
    const failure = await failureOf(
      safeFetch('http://slow-dns.test/', { lookup: neverAnswers, timeoutMs: 100 }),
    );
    expect(failure).toMatchObject({ code: 'url_fetch_failed', reason: 'timeout' });
    expect(clientSockets).toBe(0);
  });
});
