// Queue plumbing shared by the API (producer) and workers (consumers): the job catalog and BullMQ
// queue construction with the deployment's hash-tagged prefix, queue metrics. Depends on bullmq,
// shared/errors and shared/metrics.
import { type Queue, QueueEvents } from 'bullmq';
import type { Cluster, Redis } from 'ioredis';
import { ClipmodError } from '../errors/index.ts';
import {
  inferenceJobOptions,
  type JobName,
  type JobPayload,
  jobSchemas,
  queueNames,
  webhookJobOptions,
} from './job-catalog.ts';
import { openQueue } from './open-queue.ts';

export {
  inferenceJobOptions,
  isJobName,
  type JobName,
  type JobPayload,
  jobSchemas,
  queueNames,
  requestIdSchema,
  webhookJobOptions,
} from './job-catalog.ts';
export { observeJobOutcomes, observeQueueDepth, openCatalogQueues } from './queue-metrics.ts';
export { waitUntilFinished } from './wait-until-finished.ts';

/** BullMQ wants the prefix without a trailing colon; ours is `{clipmod}` (a Redis Cluster hash tag). */
export function createInferenceQueue(connection: Redis | Cluster, prefix: string): Queue {
  const queue = openQueue(queueNames.inference, {
    connection,
    prefix,
    defaultJobOptions: inferenceJobOptions,
  });
  // waitUntilFinished listens for the queue's 'closing' once per synchronous request (?wait).
  queue.setMaxListeners(10_000);
  return queue;
}

/** The queue of webhook delivery attempts (producers: inference finish hook, API replays, the worker). */
export function createWebhookQueue(connection: Redis | Cluster, prefix: string): Queue {
  return openQueue(queueNames.webhooks, { connection, prefix, defaultJobOptions: webhookJobOptions });
}

/**
 * `onError` hears the events connection's errors (each failed reconnect while Redis is unreachable);
 * without a listener BullMQ prints them raw to stderr, between the JSON log lines.
 */
export function createInferenceQueueEvents(
  connection: Redis | Cluster,
  prefix: string,
  onError: (error: Error) => void,
): QueueEvents {
  const events = new QueueEvents(queueNames.inference, { connection, prefix });
  // Every synchronous request (?wait) listens here until its job ends: hundreds at once is normal.
  events.setMaxListeners(10_000);
  events.on('error', onError);
  return events;
}

/** Validate before add, so a bad payload is a 500 here and never a poison job in the queue. */
export function parsePayload<N extends JobName>(name: N, payload: unknown): JobPayload<N> {
  const parsed = jobSchemas[name].safeParse(payload);
  if (!parsed.success) {
    throw new ClipmodError(
      'internal',
      `invalid ${name} payload: ${parsed.error.issues[0]?.message ?? 'unknown'}`,
    );
  }
  return parsed.data as JobPayload<N>;
}
