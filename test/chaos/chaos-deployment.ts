// A scaled-out clipmod for fault tests: a PRIVATE redis-server (so killing, stopping or restarting
// it disturbs no other test file), inference workers as real `clipmod serve inference` processes
// that tests SIGKILL and restart, the API and webhook worker in this process, and a loopback
// receiver that records every delivery. Everything started here is stopped by pid in stop().
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { type EmbeddedRedis, startEmbeddedRedis } from '../../shared/redis/index.ts';
import { solidImage } from '../helpers/images.ts';
import { builtModel } from '../helpers/models.ts';
import { type ServeProcess, startServeProcess } from '../helpers/serve-process.ts';
import { type ServiceHarness, startService } from '../helpers/service-harness.ts';
import {
  isSignedWith,
  type ReceivedRequest,
  type Receiver,
  startReceiver,
  waitUntil,
  webhookHeadersOf,
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
  /** The environment of the inference workers, for a test that starts one of its own. */
  workerEnv: Record<string, string>;
  /** The `serve webhooks` process when asked for one; otherwise webhooks run in the API's process. */
  webhookWorker: ServeProcess | undefined;
  /** Starts worker `index` again (after a kill) and waits until it takes jobs. */
  restartWorker(index: number): Promise<void>;
  /** Starts the webhook process again (after a kill) and waits until it takes jobs. */
  restartWebhookWorker(): Promise<void>;
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

export async function startChaosDeployment(options: {
  workers: number;
  /** Run the webhook worker as its own `clipmod serve webhooks` process (which a test may kill). */
  webhookProcess?: { concurrency: number };
  /** Addresses redis-server listens on besides loopback (a veth of the test's network namespace). */
  redisBind?: readonly string[];
  /** Extra settings for the API and every worker process (e.g. a short CLIPMOD_RESULT_TTL_SECONDS). */
  env?: Record<string, string>;
}): Promise<ChaosDeployment> {
  const redisDir = new URL(`../../.cache/chaos/redis-${randomBytes(4).toString('hex')}`, import.meta.url)
    .pathname;
  mkdirSync(redisDir, { recursive: true });
  const extraBindAddresses = options.redisBind ?? [];
  let redis = await startEmbeddedRedis({ dataDir: redisDir, extraBindAddresses });
  const receiver = await startReceiver();
  const modelDir = await builtModel('color');
  const webhookEnv = {
    CLIPMOD_ALLOW_PRIVATE_NETWORKS: '127.0.0.0/8',
    CLIPMOD_WEBHOOK_RETRY_SCHEDULE_MS: Array(10).fill('300').join(','),
    CLIPMOD_WEBHOOK_TIMEOUT_MS: '2000',
    CLIPMOD_LOCK_DURATION_MS: String(lockDurationMs),
    ...options.env,
  };
  const api = await startService({
    roles: options.webhookProcess ? ['api'] : ['api', 'webhooks'],
    env: { REDIS_URL: redis.url, ...webhookEnv },
  });
  const startWebhookProcess = async () => {
    const child = startServeProcess('webhooks', {
      REDIS_URL: redis.url,
      CLIPMOD_REDIS_PREFIX: api.prefix,
      CLIPMOD_FAULT_INJECTION: '1',
      CLIPMOD_WEBHOOK_CONCURRENCY: String(options.webhookProcess?.concurrency),
      ...webhookEnv,
    });
    await child.ready();
    return child;
  };
  let webhookWorker = options.webhookProcess ? await startWebhookProcess() : undefined;
  const workerEnv = {
    REDIS_URL: redis.url,
    CLIPMOD_REDIS_PREFIX: api.prefix,
    MODEL_DIR: modelDir,
    CLIPMOD_LOCK_DURATION_MS: String(lockDurationMs),
    CLIPMOD_MAX_BATCH_SIZE: '4',
    CLIPMOD_WORKER_CONCURRENCY: '4',
    CLIPMOD_INTRA_OP_THREADS: '1',
    CLIPMOD_FAULT_INJECTION: '1',
    ...options.env,
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
  // Each request is verified once (a soak reads back tens of thousands, every few seconds).
  const checked = new WeakMap<ReceivedRequest, Delivery[]>();
  const verifiedOnce = (request: ReceivedRequest): Delivery[] => {
    const found = checked.get(request) ?? verified(secret, request);
    checked.set(request, found);
    return found;
  };
  const deliveries = (): Delivery[] => receiver.requests.flatMap(verifiedOnce);
  return {
    get redis() {
      return redis;
    },
    redisDir,
    api,
    receiver,
    workers,
    workerEnv,
    get webhookWorker() {
      return webhookWorker;
    },
    async restartWebhookWorker() {
      webhookWorker = await startWebhookProcess();
    },
    async restartWorker(index) {
      workers[index] = startServeProcess('inference', workerEnv);
      await workers[index].ready();
    },
    async restartRedis() {
      redis = await startEmbeddedRedis({ dataDir: redisDir, port: redis.port, extraBindAddresses });
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
      await Promise.all(
        [...workers, ...(webhookWorker ? [webhookWorker] : [])].map((child) => child.stop(5_000)),
      );
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

/** Standard Webhooks' timestamp tolerance. */
const toleranceSeconds = 5 * 60;

/**
 * The signature, and the timestamp against the request's *arrival* (a receiver's clock when it got it):
 * standardwebhooks' verify() compares with the clock now, so it refuses any delivery read back more
 * than 5 min after it arrived, as a soak does.
 */
function verified(secret: string, request: ReceivedRequest): Delivery[] {
  const headers = webhookHeadersOf(request);
  const skewSeconds = Math.abs(request.receivedAt / 1000 - Number(headers['webhook-timestamp']));
  if (!(skewSeconds <= toleranceSeconds) || !isSignedWith(secret, request)) return [];
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
