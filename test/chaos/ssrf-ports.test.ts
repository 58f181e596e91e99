import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  forbiddenPorts,
  type HostLookup,
  imageFetchDefaults,
  parseCidrList,
  safeFetch,
  webhookFetchDefaults,
} from '../../shared/net/index.ts';
import { checkWebhookUrl } from '../../shared/webhooks/index.ts';
import { refusal } from '../helpers/refusal.ts';

// RELIABILITY.md S4 (ports): internal-service ports are refused before any lookup or connect, on the
// image-URL client, the webhook client and at webhook registration, even on an allow-listed network.

let canary: Server;
let canaryPort = 0;
let connections = 0;
const allowList = parseCidrList('127.0.0.0/8');
const lookupMustNotRun: HostLookup = async () => {
  throw new Error('the port check must refuse before DNS');
};

beforeAll(async () => {
  canary = createServer((socket) => {
    connections += 1;
    socket.destroy();
  });
  await new Promise<void>((resolve) => canary.listen(0, '127.0.0.1', resolve));
  canaryPort = (canary.address() as AddressInfo).port;
});

afterAll(async () => {
  await new Promise((resolve) => canary.close(resolve));
});

const clients = {
  image: (url: string) => safeFetch(url, { ...imageFetchDefaults, allowList, lookup: lookupMustNotRun }),
  webhook: (url: string) => safeFetch(url, { ...webhookFetchDefaults, allowList, lookup: lookupMustNotRun }),
  registration: (url: string) => checkWebhookUrl(url, { allowList, lookup: lookupMustNotRun }),
};

describe('S4: port policy', () => {
  for (const [name, client] of Object.entries(clients)) {
    it(`refuses :6379, :22 and every listed internal port on the ${name} client before connecting`, async () => {
      const urls = [
        'http://127.0.0.1:6379/',
        'http://127.0.0.1:22/',
        'http://images.example:25/',
        ...[...forbiddenPorts].map((port) => `https://hooks.example:${port}/x`),
      ];
      for (const url of urls) {
        expect(await refusal(client(url))).toMatchObject({ code: 'url_forbidden', reason: 'forbidden_port' });
      }
      expect(connections).toBe(0);
    });
  }

  it('still reaches an allow-listed host on an unprivileged port', async () => {
    const before = connections;
    await refusal(clients.image(`http://127.0.0.1:${canaryPort}/image.png`));
    expect(connections).toBe(before + 1);
  });

  it('refuses a redirect hop to a forbidden port', async () => {
    const server = createHttpServer((_request, response) => {
      response.writeHead(302, { location: 'http://127.0.0.1:6379/' }).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
      expect(await refusal(clients.image(url))).toMatchObject({ reason: 'forbidden_port', hop: 1 });
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
