import type { DefaultJobOptions } from 'bullmq';
import { z } from 'zod';

// The one catalog of queues and jobs: names, payload schemas and job options, validated at both ends
// (the API before add, the worker before work). Payloads carry ids only — never image bytes or secrets.

export const queueNames = { inference: 'inference' } as const;

const id = z.string().regex(/^[A-Za-z0-9_-]{8,64}$/);
const tenant = z.string().min(1).max(128);

export const jobSchemas = {
  /** Score one submitted image against a policy version; the moderation record holds the rest. */
  'moderation.run': z.object({ moderationId: id, tenant }),
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
} as const;

export type JobName = keyof typeof jobSchemas;
export type JobPayload<N extends JobName> = z.infer<(typeof jobSchemas)[N]>;

export function isJobName(name: string): name is JobName {
  return Object.hasOwn(jobSchemas, name);
}

/**
 * Transient faults retry with exponential backoff; bad input fails at once (UnrecoverableError).
 * Finished jobs are kept briefly for debugging, bounded by age and count so Redis cannot fill up.
 */
export const inferenceJobOptions: DefaultJobOptions = {
  attempts: 3,
  backoff: { type: 'exponential', delay: 1_000 },
  removeOnComplete: { age: 3_600, count: 10_000 },
  removeOnFail: { age: 86_400, count: 10_000 },
};
