import type { DefaultJobOptions } from 'bullmq';
import { z } from 'zod';

// The one catalog of queues and jobs: names, payload schemas and job options, validated at both ends
// (the API before add, the worker before work). Payloads carry ids only — never image bytes or secrets.

export const queueNames = { inference: 'inference', webhooks: 'webhooks' } as const;

const id = z.string().regex(/^[A-Za-z0-9_-]{8,64}$/);
const tenant = z.string().min(1).max(128);

/**
 * The HTTP request that caused a job (`x-request-id`), carried into worker and webhook logs so one
 * moderation can be followed across processes. Plain characters only: it is echoed in headers and logs.
 */
export const requestIdSchema = z.string().regex(/^[A-Za-z0-9._:-]{1,128}$/);

export const jobSchemas = {
  /** Score one submitted image against a policy version; the moderation record holds the rest. */
  'moderation.run': z.object({ moderationId: id, tenant, requestId: requestIdSchema.optional() }),
  /** Ad-hoc zero-shot labels for one image (POST /v1/classify). */
  'classify.run': z.object({
    requestId: id,
    tenant,
    labels: z.array(z.string().min(1).max(300)).min(1).max(256),
    templates: z.array(z.string().includes('{}')).max(100).optional(),
  }),
  /** Normalised embedding of an image (blob) or a text (POST /v1/embeddings). */
  'embedding.run': z.discriminatedUnion('kind', [
    z.object({ kind: z.literal('image'), requestId: id, tenant }),
    z.object({
      kind: z.literal('text'),
      requestId: id,
      tenant,
      texts: z.array(z.string().max(2_000)).min(1).max(256),
    }),
  ]),
  /**
   * Dry run (POST /v1/policies/:id/test): score one image against a stored version or an unsaved draft,
   * recording nothing. A draft is a policy document, not a secret; the worker validates it again.
   */
  'policy.test': z.object({
    requestId: id,
    tenant,
    policy: z.discriminatedUnion('source', [
      z.object({
        source: z.literal('stored'),
        id: z.string().min(1).max(64),
        version: z.number().int().min(1),
      }),
      z.object({ source: z.literal('draft'), document: z.record(z.string(), z.unknown()) }),
    ]),
  }),
  /**
   * One attempt of one webhook delivery (an event to one endpoint). The body and the secret stay in
   * Redis; `series` counts replays, so jobs of a superseded series stand down.
   */
  'webhook.deliver': z.object({
    deliveryId: id,
    eventId: id,
    endpointId: id,
    tenant,
    type: z.string().min(1).max(64),
    moderationId: id.optional(),
    requestId: requestIdSchema.optional(),
    series: z.number().int().min(0),
    attempt: z.number().int().min(1).max(100),
  }),
} as const;

export type JobName = keyof typeof jobSchemas;
export type JobPayload<N extends JobName> = z.infer<(typeof jobSchemas)[N]>;

export function isJobName(name: string): name is JobName {
  return Object.hasOwn(jobSchemas, name);
}

/**
 * Transient faults retry with exponential backoff; bad input fails at once (UnrecoverableError).
 * Finished jobs are kept briefly for debugging, bounded by age and count so Redis cannot fill up:
 * completed ones are only a debugging aid (the moderation record is the result), so at most 1 h / 1,000
 * (RELIABILITY.md Q12); failed ones longer, to investigate.
 */
export const inferenceJobOptions: DefaultJobOptions = {
  attempts: 3,
  backoff: { type: 'exponential', delay: 1_000 },
  removeOnComplete: { age: 3_600, count: 1_000 },
  removeOnFail: { age: 86_400, count: 10_000 },
};

/**
 * Webhook jobs fail only for infrastructure faults (a receiver's answer is an outcome, not an error):
 * those retry a few times. Retries of the delivery itself are new delayed jobs (see shared/webhooks).
 * Completed jobs are kept like inference ones: the delivery log (CLIPMOD_WEBHOOK_RETENTION_SECONDS)
 * is the record of what was sent, not the queue.
 */
export const webhookJobOptions: DefaultJobOptions = {
  attempts: 5,
  backoff: { type: 'exponential', delay: 2_000 },
  removeOnComplete: { age: 3_600, count: 1_000 },
  removeOnFail: { age: 604_800, count: 10_000 },
};
