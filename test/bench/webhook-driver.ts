// The end-to-end path the issue measures: submit through the API (202), then wait for the verdict
// webhook at a receiver on 127.0.0.1. The receiver keys arrivals by moderation id; a webhook may beat
// the submitter's bookkeeping, so arrivals are kept until asked for.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { authorized, type Driver, type ServiceHandle } from './service-bench.ts';

export type CompletionReceiver = {
  url: string;
  /** Resolves with `performance.now()` at the arrival of the webhook for moderation `id`. */
  arrival(id: string): Promise<number>;
  stop(): Promise<void>;
};

export async function startCompletionReceiver(): Promise<CompletionReceiver> {
  const arrivals = new Map<string, number>();
  const waiters = new Map<string, (at: number) => void>();
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const at = performance.now();
      response.writeHead(200).end();
      const event = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
        type?: string;
        data?: { id?: string };
      };
      const id = event.data?.id;
      if (id === undefined || !event.type?.startsWith('moderation.')) return;
      const waiter = waiters.get(id);
      if (waiter === undefined) arrivals.set(id, at);
      else {
        waiters.delete(id);
        waiter(at);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    arrival(id) {
      const at = arrivals.get(id);
      if (at !== undefined) {
        arrivals.delete(id);
        return Promise.resolve(at);
      }
      return new Promise((resolve) => waiters.set(id, resolve));
    },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Registers the receiver as the default tenant's endpoint; false when this build has no webhooks. */
export async function registerWebhook(service: ServiceHandle, url: string): Promise<boolean> {
  const response = await fetch(`${service.baseUrl}/v1/webhook-endpoints`, {
    method: 'POST',
    headers: authorized(service, 'application/json'),
    body: JSON.stringify({ url }),
  });
  await response.body?.cancel();
  return response.status === 201;
}

export function webhookDriver(service: ServiceHandle, receiver: CompletionReceiver): Driver {
  return {
    kind: 'webhook',
    async moderate(image) {
      const started = performance.now();
      const response = await fetch(`${service.baseUrl}/v1/moderations`, {
        method: 'POST',
        headers: authorized(service, 'application/octet-stream'),
        body: image,
      });
      const body = (await response.json()) as { id?: string };
      if (response.status !== 202 || body.id === undefined)
        throw new Error(`submission answered ${response.status} ${JSON.stringify(body)}`);
      return (await receiver.arrival(body.id)) - started;
    },
  };
}
