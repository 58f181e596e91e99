import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { createLogger } from '../../shared/logger/index.ts';
import { Registry } from '../../shared/metrics/index.ts';
import type { ModerationRecord } from '../../shared/moderation/index.ts';
import { parseCidrList } from '../../shared/net/index.ts';
import { connectRedis } from '../../shared/redis/index.ts';
import {
  createWebhookServices,
  type DeliveryRecord,
  defaultEventTypes,
  deliveryIdFor,
  moderationEvent,
  type WebhookEndpoint,
  type WebhookEventType,
  type WebhookServices,
} from '../../shared/webhooks/index.ts';
import type { DeliverySettings } from '../../workers/webhooks/delivery-processor.ts';
import { createWebhookWorker } from '../../workers/webhooks/webhook-worker.ts';
import { waitUntil } from './webhook-receiver.ts';

// The webhook stores, dispatcher and a real BullMQ webhook worker against the test Redis under a
// prefix of its own, on a fake clock: signatures, the retry schedule and the disable window all read
// it, and runNextAttempt() jumps the clock to a scheduled retry and promotes its delayed job.

export type FakeClock = { now(): number; set(ms: number): void };

/** Who the admin audit log names for changes a test makes straight through the stores. */
export const harnessActor = { keyId: 'test:harness', tenant: 'default' };

export type WebhookHarness = {
  redis: Redis;
  prefix: string;
  services: WebhookServices;
  clock: FakeClock;
  registry: Registry;
  createEndpoint(
    url: string,
    options?: { eventTypes?: readonly WebhookEventType[]; tenant?: string },
  ): Promise<{ endpoint: WebhookEndpoint; secret: string }>;
  /** Publishes the completion of a made-up moderation; returns the event id. */
  publishModeration(options?: { tenant?: string; status?: 'completed' | 'failed' }): Promise<string>;
  delivery(eventId: string, endpointId: string): Promise<DeliveryRecord | undefined>;
  /** Waits until the delivery has `attemptCount` attempts and is no longer mid-attempt. */
  waitForAttempts(deliveryId: string, attemptCount: number, timeoutMs?: number): Promise<DeliveryRecord>;
  /** Moves the clock to the scheduled retry, promotes its job and waits for the attempt. */
  runNextAttempt(deliveryId: string): Promise<DeliveryRecord>;
  stop(): Promise<void>;
};

export type WebhookHarnessOptions = {
  settings?: Partial<DeliverySettings>;
  random?: () => number;
  concurrency?: number;
  /** Read the real clock instead (clock.set then has no effect): for tests that wait on real delays. */
  isClockReal?: boolean;
};

export async function startWebhookHarness(options: WebhookHarnessOptions = {}): Promise<WebhookHarness> {
  const redisUrl = process.env.REDIS_URL!;
  const redis = await connectRedis(redisUrl, 'producer', 'test-webhooks');
  const prefix = `{clipmod-test-${randomBytes(6).toString('hex')}}`;
  let nowMs = Date.now();
  const clock: FakeClock = {
    now: options.isClockReal ? Date.now : () => nowMs,
    set: (ms) => {
      nowMs = ms;
    },
  };
  const services = createWebhookServices({
    redis,
    prefix,
    sealingKey: 'test-sealing-key-that-is-long-enough',
    retentionSeconds: 30 * 86_400,
    now: clock.now,
  });
  const registry = new Registry();
  const connection = await connectRedis(redisUrl, 'worker', 'test-webhook-worker');
  const worker = createWebhookWorker({
    ...services,
    connection,
    prefix,
    concurrency: options.concurrency ?? 8,
    lockDurationMs: 30_000,
    registry,
    logger: createLogger({ level: 'silent' }),
    now: clock.now,
    ...(options.random ? { random: options.random } : {}),
    settings: {
      schedule: [5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000],
      jitter: 0.2,
      timeoutMs: 2_000,
      disableAfterMs: 5 * 86_400_000,
      allowList: parseCidrList('127.0.0.0/8'),
      ...options.settings,
    },
  });
  await worker.start();

  const harness: WebhookHarness = {
    redis,
    prefix,
    services,
    clock,
    registry,
    createEndpoint: (url, endpointOptions = {}) =>
      services.endpoints.create(
        {
          tenant: endpointOptions.tenant ?? 'default',
          url,
          eventTypes: endpointOptions.eventTypes ?? defaultEventTypes,
          description: '',
          isEnabled: true,
        },
        harnessActor,
      ),
    async publishModeration(publishOptions = {}) {
      const record = madeUpModeration(
        publishOptions.tenant ?? 'default',
        publishOptions.status ?? 'completed',
      );
      await services.dispatcher.publishModeration(record);
      return moderationEvent(record)!.id;
    },
    delivery: (eventId, endpointId) => services.log.get(deliveryIdFor(eventId, endpointId)),
    async waitForAttempts(deliveryId, attemptCount, timeoutMs = 10_000) {
      const what = `${attemptCount} attempts of ${deliveryId}`;
      await waitUntil(
        what,
        async () => ((await services.log.get(deliveryId))?.attemptCount ?? 0) >= attemptCount,
        timeoutMs,
      );
      // The attempt is logged before its job follows up (health, disable, next job): wait for the job.
      const last = (await services.log.attempts(deliveryId)).at(-1)!;
      const jobId = `${deliveryId}.${last.series}.${last.attempt}`;
      await waitUntil(
        `job ${jobId} to complete`,
        async () => (await services.queue.getJobState(jobId)) === 'completed',
        timeoutMs,
      );
      return (await services.log.get(deliveryId))!;
    },
    async runNextAttempt(deliveryId) {
      const delivery = await services.log.get(deliveryId);
      if (delivery?.nextAttemptAt === undefined) throw new Error(`${deliveryId} has no retry scheduled`);
      const jobId = `${deliveryId}.${delivery.series}.${delivery.attemptCount + 1}`;
      const job = await waitUntil(`job ${jobId}`, () => services.queue.getJob(jobId));
      clock.set(delivery.nextAttemptAt);
      await job.promote();
      return harness.waitForAttempts(deliveryId, delivery.attemptCount + 1);
    },
    async stop() {
      await worker.stop();
      await services.close();
      connection.disconnect();
      await deleteKeys(redis, prefix);
      redis.disconnect();
    },
  };
  return harness;
}

let moderationCounter = 0;

/** A terminal moderation record, as the inference worker hands it to its finish hook. */
export function madeUpModeration(tenant: string, status: 'completed' | 'failed'): ModerationRecord {
  moderationCounter += 1;
  const id = `mod_${randomBytes(9).toString('base64url')}${moderationCounter}`;
  const at = new Date().toISOString();
  return {
    id,
    tenant,
    status,
    policy: { id: 'default', version: 1 },
    model: 'color',
    metadata: { upload: id },
    image: { format: 'png', width: 64, height: 48, frames: 1, sizeBytes: 120 },
    ...(status === 'completed'
      ? { verdict: { action: 'block', flagged: true, labels: [] } as unknown as ModerationRecord['verdict'] }
      : { error: { code: 'corrupt_image', message: 'Image could not be decoded.' } }),
    attempts: 1,
    createdAt: at,
    completedAt: at,
  };
}

async function deleteKeys(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    if (keys.length > 0) await redis.del(...keys);
    cursor = next;
  } while (cursor !== '0');
}
