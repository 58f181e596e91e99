import type { Job, Queue, QueueEvents } from 'bullmq';
import type { ImageInfo } from '../../shared/clip/index.ts';
import { ClipmodError } from '../../shared/errors/index.ts';
import { type ModerationRecord, type ModerationStore, newRequestId } from '../../shared/moderation/index.ts';
import type { PolicyStore } from '../../shared/policy/index.ts';
import { type JobName, type JobPayload, parsePayload, waitUntilFinished } from '../../shared/queue/index.ts';

// What the API does with a submission, apart from HTTP: resolve the policy version, claim the
// idempotency key, store bytes + record, enqueue, and wait (bounded) for the worker's answer.

export type ModerationServiceOptions = {
  store: ModerationStore;
  policies: PolicyStore;
  queue: Queue;
  queueEvents: QueueEvents;
  /**
   * Resolves once the submission's writes are on enough Redis replicas (WAIT), else throws
   * `unavailable`; unset when no replica must confirm. Runs before every 202, duplicates included.
   */
  awaitReplicas?: () => Promise<void>;
};

export type Submission = {
  tenant: string;
  image: Buffer;
  info: ImageInfo;
  policyId: string;
  metadata: Record<string, unknown>;
  idempotencyKey?: string;
  /** The HTTP request's id, stored on the record and carried by the job for log correlation. */
  requestId?: string;
};

const isTerminal = (record: ModerationRecord | undefined) =>
  record !== undefined && (record.status === 'completed' || record.status === 'failed');

export class ModerationService {
  readonly #options: ModerationServiceOptions;

  constructor(options: ModerationServiceOptions) {
    this.#options = options;
  }

  /** Returns the moderation's id; `isNew` is false when an Idempotency-Key matched an earlier submission. */
  async submit(submission: Submission): Promise<{ id: string; isNew: boolean }> {
    const { store, policies } = this.#options;
    const policy = await policies.get(submission.tenant, submission.policyId);
    if (!policy)
      throw new ClipmodError('not_found', `policy "${submission.policyId}" does not exist`, {
        details: { field: 'policy' },
      });
    const id = newRequestId();
    const { info, requestId, idempotencyKey } = submission;
    const earlierId = await store.create(
      {
        id,
        tenant: submission.tenant,
        status: 'queued',
        policy: { id: policy.id, version: policy.version },
        // The candidate in shadow mode at submit time, like the live version: fixed for this moderation.
        ...(policy.shadowVersion === undefined ? {} : { shadow: { version: policy.shadowVersion } }),
        model: null,
        metadata: submission.metadata,
        ...(requestId === undefined ? {} : { requestId }),
        image: {
          format: info.format,
          width: info.uprightWidth,
          height: info.uprightHeight,
          frames: info.frames,
          sizeBytes: submission.image.length,
        },
        attempts: 0,
        createdAt: new Date().toISOString(),
      },
      submission.image,
      idempotencyKey === undefined ? undefined : { tenant: submission.tenant, key: idempotencyKey },
    );
    if (earlierId !== undefined) {
      return this.#replicated({ id: await this.#requeue(earlierId), isNew: false });
    }
    const payload = { moderationId: id, tenant: submission.tenant, ...(requestId ? { requestId } : {}) };
    await this.#enqueue('moderation.run', payload, id);
    return this.#replicated({ id, isNew: true });
  }

  /**
   * A retry (same Idempotency-Key) of a submission whose first attempt stored the record but could not
   * enqueue it (Redis away or failing over; that client got a 503): enqueue it now. BullMQ ignores a
   * jobId it already holds, so concurrent duplicates still make one job.
   */
  async #requeue(id: string): Promise<string> {
    const record = await this.#options.store.get(id);
    if (record?.status === 'queued') {
      const { tenant, requestId } = record;
      const payload = { moderationId: id, tenant, ...(requestId ? { requestId } : {}) };
      await this.#enqueue('moderation.run', payload, id);
    }
    return id;
  }

  /** Accepted means replicated: a failover right after the 202 cannot lose the submission. */
  async #replicated<T>(result: T): Promise<T> {
    await this.#options.awaitReplicas?.();
    return result;
  }

  /** The tenant's moderation, or not_found (also for another tenant's id: existence is not leaked). */
  async get(tenant: string, id: string): Promise<ModerationRecord> {
    const record = /^[A-Za-z0-9_-]{8,64}$/.test(id) ? await this.#options.store.get(id) : undefined;
    if (!record || record.tenant !== tenant)
      throw new ClipmodError('not_found', `moderation ${id} not found`);
    return record;
  }

  /** Waits up to waitMs for the tenant's moderation to finish; returns it in whatever state it then has. */
  async waitFor(tenant: string, id: string, waitMs: number): Promise<ModerationRecord> {
    const record = await this.get(tenant, id);
    if (waitMs === 0 || isTerminal(record)) return record;
    await this.#waitForJob(id, waitMs).catch(() => undefined);
    return this.get(tenant, id);
  }

  /**
   * Like waitFor, for an id just returned by submit(): a concurrent duplicate submission may still be
   * writing the record its Idempotency-Key points at, which reads as queued rather than not found.
   */
  async waitForSubmitted(tenant: string, id: string, waitMs: number): Promise<ModerationRecord> {
    const record = await this.#options.store.get(id);
    if (record === undefined) return { id, status: 'queued' } as ModerationRecord;
    return this.waitFor(tenant, id, waitMs);
  }

  /** Ad-hoc model work (classify, embeddings): image bytes stored under the request id, result awaited. */
  async run<N extends Exclude<JobName, 'moderation.run'>>(
    name: N,
    payload: JobPayload<N>,
    image: Buffer | undefined,
    waitMs: number,
  ): Promise<unknown> {
    const { requestId } = payload as { requestId: string };
    if (image) await this.#options.store.putImage(requestId, image);
    await this.#enqueue(name, payload, requestId);
    try {
      return await waitUntilFinished(this.#options.queue, this.#options.queueEvents, requestId, waitMs);
    } catch (error) {
      const message = (error as Error).message ?? '';
      if (/timed out/i.test(message))
        throw new ClipmodError('timeout', `no result within ${waitMs} ms`, { retryAfterSeconds: 1 });
      throw failedJobError(message);
    }
  }

  async #enqueue<N extends JobName>(name: N, payload: JobPayload<N>, jobId: string): Promise<Job> {
    try {
      return await this.#options.queue.add(name, parsePayload(name, payload), { jobId });
    } catch (error) {
      throw new ClipmodError('unavailable', 'the queue is unavailable; retry shortly', {
        retryAfterSeconds: 1,
        cause: error,
      });
    }
  }

  async #waitForJob(id: string, waitMs: number): Promise<void> {
    await waitUntilFinished(this.#options.queue, this.#options.queueEvents, id, waitMs);
  }
}

/** A worker's typed failure ("corrupt_image: …") becomes the same typed error for the client. */
function failedJobError(message: string): ClipmodError {
  const match = /^([a-z_]+): (.*)$/s.exec(message);
  const code = match?.[1];
  if (
    code &&
    [
      'unsupported_format',
      'corrupt_image',
      'image_too_large',
      'empty_image',
      'bad_request',
      'not_found',
    ].includes(code)
  ) {
    return new ClipmodError(code as 'bad_request', match[2] ?? message);
  }
  return new ClipmodError('internal', 'the model failed on this request');
}
