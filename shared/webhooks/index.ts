// Webhooks as Standard Webhooks describes them: signing, endpoints per tenant, events, the delivery
// log, the pure retry and outcome rules, and the dispatcher that turns events into delivery jobs.
// Used by the API, the inference finish hook and the webhook worker; it must not depend on express,
// services or workers.
import type { Queue } from 'bullmq';
import type { Cluster, Redis } from 'ioredis';
import { AdminAuditLog } from '../audit/index.ts';
import { createWebhookQueue } from '../queue/index.ts';
import { DeliveryLog } from './delivery-log.ts';
import { WebhookEndpointStore } from './endpoint-store.ts';
import { SecretBox } from './secret-box.ts';
import { WebhookDispatcher } from './webhook-dispatcher.ts';

export {
  type AttemptRecord,
  DeliveryLog,
  type DeliveryRecord,
  type DeliveryStatus,
  type DeliveryUpdate,
  deliveryStatuses,
  type FinalReason,
  responseExcerpt,
} from './delivery-log.ts';
export {
  type AttemptDecision,
  type AttemptOutcome,
  type AttemptResult,
  classifyAttempt,
  decideAttempt,
  type ErrorClass,
  errorClasses,
} from './delivery-outcome.ts';
export {
  type DisableReason,
  type EndpointChanges,
  type EndpointHealth,
  type NewEndpoint,
  type WebhookEndpoint,
  WebhookEndpointStore,
  type WebhookEndpointStoreOptions,
} from './endpoint-store.ts';
export {
  defaultDisableAfterMs,
  defaultJitter,
  defaultRetryScheduleMs,
  type FailureStreak,
  isDisableDue,
  maxRetryAfterMs,
  type NextAttempt,
  nextAttempt,
  parseRetryAfter,
  type RetryScheduleOptions,
} from './retry-schedule.ts';
export { SecretBox } from './secret-box.ts';
export { WebhookDispatcher, type WebhookDispatcherOptions } from './webhook-dispatcher.ts';
export {
  defaultEventTypes,
  deliveryIdFor,
  eventBody,
  isOperationalEvent,
  moderationEvent,
  stableId,
  type WebhookEvent,
  type WebhookEventType,
  webhookEventTypes,
} from './webhook-event.ts';
export {
  generateWebhookSecret,
  signWebhook,
  type WebhookHeaders,
  webhookHeaders,
  webhookSecretKey,
} from './webhook-signature.ts';
export { checkWebhookUrl, type WebhookUrlPolicy } from './webhook-url.ts';

export type WebhookServices = {
  endpoints: WebhookEndpointStore;
  log: DeliveryLog;
  queue: Queue;
  dispatcher: WebhookDispatcher;
  close(): Promise<void>;
};

export type WebhookServicesOptions = {
  /** A command connection (the process's producer connection). */
  redis: Redis | Cluster;
  prefix: string;
  /** CLIPMOD_WEBHOOK_SECRET_KEY: seals signing secrets at rest when set. */
  sealingKey: string | undefined;
  /** CLIPMOD_WEBHOOK_RETENTION_SECONDS: event bodies and the delivery log. */
  retentionSeconds: number;
  now?: () => number;
};

/** The stores, queue and dispatcher every webhook-aware role shares, wired once. */
export function createWebhookServices(options: WebhookServicesOptions): WebhookServices {
  const { redis, prefix } = options;
  const clock = options.now ? { now: options.now } : {};
  const endpoints = new WebhookEndpointStore({
    redis,
    prefix,
    secretBox: new SecretBox(options.sealingKey),
    ...clock,
  });
  const log = new DeliveryLog({ redis, prefix, retentionSeconds: options.retentionSeconds });
  const queue = createWebhookQueue(redis, prefix);
  return {
    endpoints,
    log,
    queue,
    dispatcher: new WebhookDispatcher({
      queue,
      endpoints,
      log,
      audit: new AdminAuditLog({ redis, prefix, ...clock }),
      ...clock,
    }),
    close: () => queue.close(),
  };
}
