import { z } from 'zod';
import type { Verdict } from '../policy/index.ts';

// The stored shape of one moderation, as GET /v1/moderations/:id returns it (minus `tenant`).

export const moderationStatuses = ['queued', 'processing', 'completed', 'failed'] as const;
export type ModerationStatus = (typeof moderationStatuses)[number];

export type ModerationRecord = {
  id: string;
  tenant: string;
  status: ModerationStatus;
  policy: { id: string; version: number };
  model: string | null;
  metadata: Record<string, unknown>;
  /** The submitting HTTP request's `x-request-id`: the thread through API, worker and webhook logs. */
  requestId?: string;
  image: { format: string; width: number; height: number; frames: number; sizeBytes: number };
  verdict?: Verdict;
  /**
   * Set at submit while a candidate version runs in shadow mode; the worker adds the candidate's verdict
   * (or why it could not score). Recorded for comparison only: never acted on.
   */
  shadow?: { version: number; verdict?: Verdict; error?: { code: string; message: string } };
  error?: { code: string; message: string };
  timings?: { queuedMs: number; preprocessMs: number; inferenceMs: number; totalMs: number };
  attempts: number;
  createdAt: string;
  startedAt?: string;
  completedAt?: string;
};

/** Client-supplied metadata: a small flat-ish JSON object echoed back in results and webhooks. */
export const metadataSchema = z
  .record(z.string().max(64), z.unknown())
  .refine((value) => JSON.stringify(value).length <= 4_096, {
    message: 'metadata must be at most 4 KB of JSON',
  });

/** What a tenant sees: everything but the owner field. */
export function publicModeration(record: ModerationRecord): Omit<ModerationRecord, 'tenant'> {
  const { tenant: _tenant, ...visible } = record;
  return visible;
}
