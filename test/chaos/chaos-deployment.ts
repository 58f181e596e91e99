// A scaled-out clipmod for fault tests: a PRIVATE redis-server (so killing, stopping or restarting
// it disturbs no other test file), inference workers as real `clipmod serve inference` processes
// that tests SIGKILL and restart, the API and webhook worker in this process, and a loopback
// receiver that records every delivery. Everything started here is stopped by pid in stop().
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { Webhook } from 'standardwebhooks';
import { type EmbeddedRedis, startEmbeddedRedis } from '../../shared/redis/index.ts';
import { solidImage } from '../helpers/images.ts';
import { builtModel } from '../helpers/models.ts';
import { type ServeProcess, startServeProcess } from '../helpers/serve-process.ts';
import { type ServiceHarness, startService } from '../helpers/service-harness.ts';
import {
  type ReceivedRequest,
  type Receiver,
  startReceiver,
  waitUntil,
} from '../helpers/webhook-receiver.ts';

/** CI size unless CLIPMOD_CHAOS_FULL=1 (`npm run test:chaos`) asks for the full one. */
export const isFullSize = process.env.CLIPMOD_CHAOS_FULL === '1';
export const sized = (ci: number, full: number): number => (isFullSize ? full : ci);

/** The RELIABILITY.md defaults: lockDuration 5 s (stalledInterval 2.5 s), maxStalledCount 2 in code. */
export const lockDurationMs = 5_000;

export type Delivery = { webhookId: string; body: string; type: string; moderationId: string; at: number };

export type ChaosDeployment = {
  redis: EmbeddedRedis;
  redisDir: string;
  api: ServiceHarness;
  receiver: Receiver;
  workers: ServeProcess[];
  /** Starts worker `index` again (after a kill) and waits until it takes jobs. */
  restartWorker(index: number): Promise<void>;
  /** Restarts redis-server on the same port from its AOF. */
  restartRedis(): Promise<void>;
  /** POST /v1/moderations (JSON, base64); resolves with the HTTP status and the moderation id. */
  submit(metadata?: Record<string, unknown>): Promise<{ status: number; id?: string; ms: number }>;
  /** Signature-verified deliveries so far. */
  deliveries(): Delivery[];
  /** Waits until every id has a terminal (completed/failed) delivery. */
  awaitTerminal(ids: readonly string[], timeoutMs: number): Promise<void>;
  stop(): Promise<void>;
};

export async function startChaosDeployment(options: { workers: number }): Promise<ChaosDeployment> {
  const redisDir = new URL(`../../.cache/chaos/redis-${randomBytes(4).toString('hex')}`, import.meta.url)
    .pathname;
  mkdirSync(redisDir, { recursive: true });
  let redis = await startEmbeddedRedis({ dataDir: redisDir });
  const receiver = await startReceiver();
  const modelDir = await builtModel('color');
  const api = await startService({
    roles: ['api', 'webhooks'],
    env: {
      REDIS_URL: redis.url,
      CLIPMOD_ALLOW_PRIVATE_NETWORKS: '127.0.0.0/8',
      CLIPMOD_WEBHOOK_RETRY_SCHEDULE_MS: Array(10).fill('300').join(','),
      CLIPMOD_WEBHOOK_TIMEOUT_MS: '2000',
    },
  });
  const workerEnv = {
    REDIS_URL: redis.url,
    CLIPMOD_REDIS_PREFIX: api.prefix,
    MODEL_DIR: modelDir,
    CLIPMOD_LOCK_DURATION_MS: String(lockDurationMs),
    CLIPMOD_MAX_BATCH_SIZE: '4',
    CLIPMOD_WORKER_CONCURRENCY: '4',
    CLIPMOD_INTRA_OP_THREADS: '1',
    CLIPMOD_FAULT_INJECTION: '1',
  };
  const secret = await configure(api, receiver);
  const workers = Array.from({ length: options.workers }, () => startServeProcess('inference', workerEnv));
  await Promise.all(workers.map((worker) => worker.ready()));
  // Every submission a different image: identical bytes would be answered from the finished result.
  let submissions = 0;
  const nextImage = async () => {
    const n = submissions++;
    const rgb: [number, number, number] = [230, n % 60, Math.floor(n / 60) % 60];
    return Buffer.from(await solidImage('png', 64 + Math.floor(n / 3600), 48, rgb)).toString('base64');
  };
  const verifier = new Webhook(secret);
  const deliveries = (): Delivery[] => receiver.requests.flatMap((request) => verified(verifier, request));
  return {
    get redis() {
      return redis;
    },
    redisDir,
    api,
    receiver,
    workers,
    async restartWorker(index) {
      workers[index] = startServeProcess('inference', workerEnv);
      await workers[index].ready();
    },
    async restartRedis() {
      redis = await startEmbeddedRedis({ dataDir: redisDir, port: redis.port });
    },
    async submit(metadata = {}) {
      const image = await nextImage();
      const startedAt = performance.now();
      const response = await api
        .request('/v1/moderations', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ image: { base64: image }, metadata }),
          signal: AbortSignal.timeout(10_000),
        })
        .catch(() => undefined);
      const ms = performance.now() - startedAt;
      if (!response) return { status: 0, ms };
      const body = (await response.json().catch(() => ({}))) as { id?: string };
      return { status: response.status, ms, ...(body.id ? { id: body.id } : {}) };
    },
    deliveries,
    async awaitTerminal(ids, timeoutMs) {
      await waitUntil(
        `terminal webhooks for ${ids.length} moderations`,
        () => {
          const done = new Set(deliveries().map((delivery) => delivery.moderationId));
          return ids.every((id) => done.has(id));
        },
        timeoutMs,
      );
    },
    async stop() {
      await Promise.all(workers.map((worker) => worker.stop(5_000)));
      await api.stop();
      await receiver.stop();
      await redis.stop();
      rmSync(redisDir, { recursive: true, force: true });
    },
  };
}

async function configure(api: ServiceHarness, receiver: Receiver): Promise<string> {
  const json = { 'content-type': 'application/json' };
  const policy = await api.request('/v1/policies/default', {
    method: 'PUT',
    headers: json,
    body: JSON.stringify({
      labels: [{ id: 'red', prompts: ['a red image'], threshold: 0.5, action: 'block' }],
      baseline: ['a green image', 'a blue image'],
    }),
  });
  if (policy.status !== 201) throw new Error(`policy: HTTP ${policy.status}`);
  const endpoint = await api.request('/v1/webhook-endpoints', {
    method: 'POST',
    headers: json,
    body: JSON.stringify({ url: receiver.url('/hooks') }),
  });
  if (endpoint.status !== 201) throw new Error(`endpoint: HTTP ${endpoint.status}`);
  return ((await endpoint.json()) as { secret: string }).secret;
}

function verified(verifier: Webhook, request: ReceivedRequest): Delivery[] {
  const headers = {
    'webhook-id': String(request.headers['webhook-id'] ?? ''),
    'webhook-timestamp': String(request.headers['webhook-timestamp'] ?? ''),
    'webhook-signature': String(request.headers['webhook-signature'] ?? ''),
  };
  try {
    verifier.verify(request.body, headers);
  } catch {
    return [];
  }
  const body = request.body.toString('utf8');
  const event = JSON.parse(body) as { type: string; data: { id: string } };
  return [
    {
      webhookId: headers['webhook-id'],
      body,
      type: event.type,
      moderationId: event.data.id,
      at: request.receivedAt,
    },
  ];
}
