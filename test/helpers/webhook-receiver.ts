import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';

// A webhook receiver on 127.0.0.1 that records every request (path, headers, body bytes, arrival) and
// answers with a handler tests swap at will. It can go down and come back on the same port.

export type ReceivedRequest = {
  path: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
  receivedAt: number;
};
export type ReceiverHandler = (request: ReceivedRequest, response: ServerResponse) => void;

export type Receiver = {
  port: number;
  url(path?: string): string;
  requests: ReceivedRequest[];
  /** Requests whose path is `path`. */
  at(path: string): ReceivedRequest[];
  handler: ReceiverHandler;
  /** Stops listening and cuts every open connection (hanging handlers included). */
  stop(): Promise<void>;
  /** Listens again on the same port. */
  restart(): Promise<void>;
};

export const answerOk: ReceiverHandler = (_request, response) => {
  response.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
};

export async function startReceiver(handler: ReceiverHandler = answerOk): Promise<Receiver> {
  const requests: ReceivedRequest[] = [];
  let server: Server | undefined;
  const receiver: Receiver = {
    port: 0,
    url: (path = '/hook') => `http://127.0.0.1:${receiver.port}${path}`,
    requests,
    at: (path) => requests.filter((request) => request.path === path),
    handler,
    async stop() {
      const closing = server;
      server = undefined;
      if (!closing) return;
      closing.closeAllConnections();
      await new Promise<void>((resolve) => closing.close(() => resolve()));
    },
    async restart() {
      server = await listen(receiver.port);
    },
  };
  const listen = (port: number) =>
    new Promise<Server>((resolve, reject) => {
      const created = createServer((incoming, response) => {
        const chunks: Buffer[] = [];
        incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
        incoming.on('end', () => {
          const request = {
            path: incoming.url ?? '/',
            headers: incoming.headers,
            body: Buffer.concat(chunks),
            receivedAt: Date.now(),
          };
          requests.push(request);
          receiver.handler(request, response);
        });
      });
      created.once('error', reject);
      created.listen(port, '127.0.0.1', () => resolve(created));
    });
  server = await listen(0);
  receiver.port = (server.address() as AddressInfo).port;
  return receiver;
}

/** The three Standard Webhooks headers of a recorded request, as the oracle wants them. */
type SignedHeaders = { 'webhook-id': string; 'webhook-timestamp': string; 'webhook-signature': string };

export function webhookHeadersOf(request: ReceivedRequest): SignedHeaders {
  const header = (name: string): string => String(request.headers[name] ?? '');
  return {
    'webhook-id': header('webhook-id'),
    'webhook-timestamp': header('webhook-timestamp'),
    'webhook-signature': header('webhook-signature'),
  };
}

/** The oracle's full verification, the receiver's clock included (±5 min). */
export function verifiesWith(secret: string, request: ReceivedRequest): boolean {
  try {
    new Webhook(secret).verify(request.body, webhookHeadersOf(request));
    return true;
  } catch {
    return false;
  }
}

/** Signature check alone, for requests signed at a faked time the oracle's clock would refuse. */
export function isSignedWith(secret: string, request: ReceivedRequest): boolean {
  const headers = webhookHeadersOf(request);
  const expected = new Webhook(secret).sign(
    headers['webhook-id'],
    new Date(Number(headers['webhook-timestamp']) * 1000),
    request.body,
  );
  return headers['webhook-signature'].split(' ').includes(expected);
}

/** Polls until `condition` holds; fails with `what` after `timeoutMs`. */
export async function waitUntil<T>(
  what: string,
  condition: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
