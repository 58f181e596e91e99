import http from 'node:http';
import { type AddressInfo, createServer, type Server } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type HostLookup,
  imageFetchDefaults,
  parseCidrList,
  safeFetch,
  webhookFetchDefaults,
} from '../../shared/net/index.ts';
import { checkWebhookUrl } from '../../shared/webhooks/index.ts';
import {
  canonicalHost,
  fcIpv4ShapedSpellings,
  fcIpv6ShapedSpellings,
  ipv4Spellings,
  ipv6Spellings,
  type Spelling,
  type Target,
  urlsOf,
} from '../helpers/address-spellings.ts';
import { refusal } from '../helpers/refusal.ts';
import { type SocketTrap, startSocketTrap } from '../helpers/socket-trap.ts';

// RELIABILITY.md S1, property-based, at the level both outbound clients share: generated spellings of
// loopback (the canary 127.0.0.2, other 127/8, 0.0.0.0, ::1, IPv4-mapped and -compatible forms) go
// straight through safeFetch with the image client's and the webhook client's options, and through
// the webhook registration check, with only 127.0.0.1 allow-listed. Each must be refused as a
// forbidden address without a DNS query and without a socket: a trap destroys any connection off
// 127.0.0.1 before connect(2), and a canary listens on 127.0.0.2 (and ::1) at the URLs' port.

const allowed = '127.0.0.1';
const allowList = parseCidrList(`${allowed}/32`);
const runsPerGenerator = 250;

let trap: SocketTrap;
let canaryPort = 0;
let canaryHits = 0;
const canaries: Server[] = [];
let imageHost: http.Server;
let imagePort = 0;
const dnsQueries: string[] = [];

/** Every generated host is an IP literal once parsed; reaching DNS would mean it was not read as one. */
const lookup: HostLookup = async (hostname) => {
  dnsQueries.push(hostname);
  throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
};

const clients: Record<string, (url: string) => Promise<unknown>> = {
  image: (url) => safeFetch(url, { ...imageFetchDefaults, allowList, lookup }),
  webhook: (url) =>
    safeFetch(url, {
      ...webhookFetchDefaults,
      headers: { 'content-type': 'application/json' },
      body: '{"type":"moderation.completed"}',
      allowList,
      lookup,
    }),
  registration: (url) => checkWebhookUrl(url, { allowList, lookup }),
};

const generators: Record<string, fc.Arbitrary<Spelling>> = {
  'IPv4, 1–4 parts in any radix, zero-padded, trailing dot, %-encoded or full-width': ipv4Spellings(),
  'IPv4 in the shapes of fc.ipV4Extended()': fcIpv4ShapedSpellings(),
  'IPv6 ::1, mapped and compatible, any `::`, padding, case, dotted tail': ipv6Spellings(),
  'IPv6 in the shapes of fc.ipV6()': fcIpv6ShapedSpellings(),
};

async function listenCanary(host: string, port: number): Promise<Server> {
  const canary = createServer((socket) => {
    canaryHits += 1;
    socket.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    canary.once('error', reject);
    canary.listen(port, host, resolve);
  });
  canaries.push(canary);
  return canary;
}

beforeAll(async () => {
  const canary = await listenCanary('127.0.0.2', 0);
  canaryPort = (canary.address() as AddressInfo).port;
  // ::1 may be missing (IPv6 disabled) or the port taken there; the trap covers it either way.
  await listenCanary('::1', canaryPort).catch(() => undefined);
  imageHost = http.createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'image/png' }).end('not really a png');
  });
  await new Promise<void>((resolve) => imageHost.listen(0, allowed, resolve));
  imagePort = (imageHost.address() as AddressInfo).port;
  trap = startSocketTrap([allowed]);
});

afterAll(async () => {
  trap?.stop();
  imageHost?.closeAllConnections();
  imageHost?.close();
  for (const canary of canaries) canary.close();
});

describe('S1: generated spellings of loopback through safeFetch and the registration check', () => {
  for (const [name, spellings] of Object.entries(generators)) {
    it(`${name}: ${runsPerGenerator} URLs, each refused by the image client, the webhook client and registration`, async () => {
      const hosts = new Set<string>();
      const parsedHosts = new Set<string>();
      const startedAt = performance.now();
      await fc.assert(
        fc.asyncProperty(urlsOf(spellings, canaryPort), async ({ url, target, host }) => {
          // The generator's promise, checked against Node's own URL parser: the spelling denotes the
          // target, so each refusal below is about the address and not about a broken URL.
          const parsedHost = new URL(url).hostname;
          expect(parsedHost, url).toBe(canonicalHost(target));
          hosts.add(host);
          parsedHosts.add(parsedHost);
          for (const [client, call] of Object.entries(clients)) {
            expect(await refusal(call(url)), `${client}: ${url}`).toMatchObject({
              code: 'url_forbidden',
              reason: 'forbidden_address',
            });
          }
        }),
        { numRuns: runsPerGenerator },
      );
      expect(trap.trapped).toEqual([]);
      expect(dnsQueries).toEqual([]);
      expect(canaryHits).toBe(0);
      // Enough variety that the property says something (measured: about 120–240 distinct per 250).
      expect(hosts.size).toBeGreaterThan(runsPerGenerator / 3);
      const ms = Math.round(performance.now() - startedAt);
      process.stderr.write(
        `[chaos] S1 ${name}: ${runsPerGenerator} URLs × 3 checks refused, ${hosts.size} distinct spellings ` +
          `of ${parsedHosts.size} addresses, 0 sockets, 0 DNS queries, ${ms} ms\n`,
      );
    });
  }

  // The control: the same spelling machinery aimed at the allowed host gets through the trap to it,
  // so the refusals above come from the address, not from generators or a trap that block everything.
  it('fetches the allow-listed 127.0.0.1 however it is spelled (IPv4 forms and ::ffff:127.0.0.1)', async () => {
    const allowedTarget: Target = { family: 4, value: 0x7f_00_00_01 };
    const mappedTarget: Target = { family: 6, value: 0xffff_7f00_0001n };
    const spellingsOfAllowed = fc.oneof(
      ipv4Spellings(fc.constant(allowedTarget)),
      fcIpv4ShapedSpellings(fc.constant(allowedTarget)),
      ipv6Spellings(fc.constant(mappedTarget)),
      fcIpv6ShapedSpellings(fc.constant(mappedTarget)),
    );
    const addresses = new Set<string>();
    await fc.assert(
      fc.asyncProperty(spellingsOfAllowed, async ({ host }) => {
        const url = `http://${host}:${imagePort}/image.png`;
        const response = await safeFetch(url, { ...imageFetchDefaults, allowList, lookup });
        expect(response.status, url).toBe(200);
        addresses.add(response.address);
        expect(await checkWebhookUrl(url, { allowList, lookup })).toBe(new URL(url).href);
      }),
      { numRuns: 50 },
    );
    expect([...addresses].every((address) => ['127.0.0.1', '::ffff:127.0.0.1'].includes(address))).toBe(true);
    expect(trap.trapped).toEqual([]);
  });
});
