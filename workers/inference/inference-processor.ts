import { type Job, UnrecoverableError } from 'bullmq';
import {
  type ClipModel,
  embedTextsCached,
  ensembleClassEmbeddings,
  expandPrompts,
  rankLabels,
  type TextEmbeddingCache,
  zeroShotProbabilities,
} from '../../shared/clip/index.ts';
import { ClipmodError, isClipmodError } from '../../shared/errors/index.ts';
import type { Logger } from '../../shared/logger/index.ts';
import type { ModerationRecord, ModerationStore } from '../../shared/moderation/index.ts';
import { decideVerdict, type PolicyDocument, type ShadowStats } from '../../shared/policy/index.ts';
import { isJobName, type JobPayload, parsePayload } from '../../shared/queue/index.ts';
import type { FaultInjector } from '../../shared/runtime/index.ts';
import { countShadow, shadowVerdict, testPolicy } from './candidate-scoring.ts';
import type { ImageEmbedder } from './image-embedder.ts';
import type { ModerationExtensions } from './moderation-extensions.ts';
import { scorePolicy } from './policy-scoring.ts';
import { PreparedPolicies } from './prepared-policies.ts';

export type InferenceProcessorDeps = {
  model: ClipModel;
  embedder: ImageEmbedder;
  store: ModerationStore;
  textCache: TextEmbeddingCache;
  loadPolicy(tenant: string, id: string, version: number): Promise<PolicyDocument | undefined>;
  logger: Logger;
  /** Appended to the model id in every verdict, e.g. a warning that a test model is in use. */
  modelNote?: string;
  onTextCache?(hits: number, misses: number): void;
  /**
   * Called once a moderation reaches a terminal state (completed or failed), after it is stored and
   * before the job is acknowledged — so a crash in between redelivers the job and calls it again
   * (at-least-once; consumers such as the webhook enqueue must be idempotent).
   */
  onFinished?(record: ModerationRecord): Promise<void>;
  /** Shared with the hot-reload subscriber, which prepares new versions ahead; else one of its own. */
  preparedPolicies?: PreparedPolicies;
  /** Tallies shadow-mode comparisons (GET /v1/policies/:id/shadow/summary). */
  shadowStats?: Pick<ShadowStats, 'record'>;
  /** Known-bad bank matches before the verdict, embedding retention after the record is stored. */
  extensions?: ModerationExtensions;
  /** Test-only crash points (CLIPMOD_FAULT_INJECTION); absent in production. */
  faults?: FaultInjector;
};

/** The BullMQ processor of the inference queue: one job = one image, batched underneath. */
export function createInferenceProcessor(deps: InferenceProcessorDeps) {
  const policies = deps.preparedPolicies ?? new PreparedPolicies(deps);

  async function imageBytes(id: string): Promise<Buffer> {
    const bytes = await deps.store.image(id);
    if (!bytes) throw new ClipmodError('not_found', 'the submitted image expired before a worker took it');
    return bytes;
  }

  async function moderate(job: Job, payload: JobPayload<'moderation.run'>): Promise<ModerationRecord> {
    const record = await deps.store.get(payload.moderationId);
    if (!record) throw new UnrecoverableError(`moderation ${payload.moderationId} not found`);
    if (record.status === 'completed' || record.status === 'failed') {
      // A redelivered job: the work is done, but the finish hook may not have run before the crash.
      await countShadow(deps.shadowStats, record);
      await deps.onFinished?.(record);
      return record;
    }
    deps.faults?.crashIfRequested(record.metadata, 'inference-crash');
    const startedAt = new Date();
    const isStarted = await deps.store.save({
      ...record,
      status: 'processing',
      startedAt: startedAt.toISOString(),
      attempts: job.attemptsMade + 1,
    });
    if (!isStarted) return finishedElsewhere(job, record.id);
    const policy = await policies.get(record.tenant, record.policy.id, record.policy.version);
    const image = await deps.embedder.embed(await imageBytes(record.id));
    const scored = scorePolicy(policy, image.embeddings, image.frameIndexes, deps.model.logitScale);
    const results = (await deps.extensions?.adjustResults(record, image, scored)) ?? scored;
    const shadow = await shadowVerdict(policies, record, image, deps.model.logitScale, deps.logger);
    const completedAt = new Date();
    const finished: ModerationRecord = {
      ...record,
      status: 'completed',
      model: modelName(deps),
      verdict: decideVerdict(policy.document, results),
      ...(shadow === undefined ? {} : { shadow }),
      timings: {
        queuedMs: startedAt.getTime() - Date.parse(record.createdAt),
        preprocessMs: round(image.preprocessMs),
        inferenceMs: round(image.inferenceMs),
        totalMs: completedAt.getTime() - Date.parse(record.createdAt),
      },
      attempts: job.attemptsMade + 1,
      startedAt: startedAt.toISOString(),
      completedAt: completedAt.toISOString(),
    };
    if (!(await deps.store.save(finished))) return finishedElsewhere(job, record.id);
    await deps.store.deleteImage(record.id);
    await deps.extensions?.retain(finished, image);
    await countShadow(deps.shadowStats, finished);
    await deps.onFinished?.(finished);
    return finished;
  }

  /**
   * Another worker finished the moderation while this one still ran it: this one lost the job's lock
   * (partitioned from Redis, or stalled past lockDuration) and the job was redelivered. The first
   * result stands, and its worker published it.
   */
  async function finishedElsewhere(job: Job, id: string): Promise<ModerationRecord> {
    deps.logger.warn(
      { jobId: job.id, moderationId: id },
      'moderation already finished elsewhere; result kept',
    );
    const stored = await deps.store.get(id);
    if (!stored) throw new UnrecoverableError(`moderation ${id} not found`);
    return stored;
  }

  async function classify(payload: JobPayload<'classify.run'>) {
    const templates = payload.templates ?? ['{}'];
    const texts = expandPrompts(payload.labels, templates);
    const { embeddings } = await embedTextsCached(deps.model, deps.textCache, texts);
    const classes = ensembleClassEmbeddings(embeddings, deps.model.embeddingDim, templates.length);
    const image = await deps.embedder.embed(await imageBytes(payload.requestId));
    await deps.store.deleteImage(payload.requestId);
    const first = image.embeddings.subarray(0, deps.model.embeddingDim);
    const scores = zeroShotProbabilities(first, classes, deps.model.embeddingDim, deps.model.logitScale);
    return { model: modelName(deps), results: rankLabels(payload.labels, scores) };
  }

  async function embed(payload: JobPayload<'embedding.run'>) {
    const dim = deps.model.embeddingDim;
    if (payload.kind === 'text') {
      const rows = await deps.model.encodeTexts(payload.texts);
      return {
        model: modelName(deps),
        dim,
        embeddings: payload.texts.map((_, i) => Array.from(rows.subarray(i * dim, (i + 1) * dim))),
      };
    }
    const image = await deps.embedder.embed(await imageBytes(payload.requestId));
    await deps.store.deleteImage(payload.requestId);
    return { model: modelName(deps), dim, embeddings: [Array.from(image.embeddings.subarray(0, dim))] };
  }

  async function dryRun(payload: JobPayload<'policy.test'>) {
    const embedImage = async () => {
      const image = await deps.embedder.embed(await imageBytes(payload.requestId));
      await deps.store.deleteImage(payload.requestId);
      return image;
    };
    const { verdict } = await testPolicy(payload, policies, embedImage, deps.model.logitScale);
    return { model: modelName(deps), verdict };
  }

  async function run(job: Job): Promise<unknown> {
    if (!isJobName(job.name)) throw new UnrecoverableError(`unknown job ${job.name}`);
    if (job.name === 'moderation.run') return moderate(job, parsePayload('moderation.run', job.data));
    if (job.name === 'classify.run') return classify(parsePayload('classify.run', job.data));
    if (job.name === 'policy.test') return dryRun(parsePayload('policy.test', job.data));
    return embed(parsePayload('embedding.run', job.data));
  }

  /** Bad input fails at once and for good; anything else retries, and the last attempt records the failure. */
  return async function process(job: Job): Promise<unknown> {
    try {
      return await run(job);
    } catch (error) {
      const isPermanent =
        error instanceof UnrecoverableError || (isClipmodError(error) && error.isClientError);
      const isLastAttempt = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      if (job.name === 'moderation.run' && (isPermanent || isLastAttempt))
        await recordFailure(deps, job, error);
      if (isPermanent)
        throw error instanceof UnrecoverableError ? error : new UnrecoverableError(describe(error));
      deps.logger.warn(
        { jobId: job.id, requestId: requestIdOf(job), err: error, attempt: job.attemptsMade + 1 },
        'job failed; will retry',
      );
      throw error;
    }
  };
}

/** The submitting request's id on moderation jobs (classify/embedding `requestId` names their image). */
function requestIdOf(job: Job): string | undefined {
  const { requestId } = job.data as { requestId?: unknown };
  return job.name === 'moderation.run' && typeof requestId === 'string' ? requestId : undefined;
}

function describe(error: unknown): string {
  return isClipmodError(error) ? `${error.code}: ${error.message}` : String(error);
}

/**
 * A job that crashed its worker more than maxStalledCount times is failed by BullMQ's stalled check,
 * where no processor runs: without this the moderation would stay `processing` and the customer would
 * never hear of it. Called from the queue's `failed` event, possibly by several workers at once, so
 * it is idempotent up to the webhook (whose event id is stable per moderation and status).
 */
export async function recordStalledFailure(
  deps: Pick<InferenceProcessorDeps, 'store' | 'model' | 'modelNote' | 'onFinished'>,
  job: Job,
  failedReason: string,
): Promise<void> {
  const id = (job.data as { moderationId?: string }).moderationId;
  const record = id ? await deps.store.get(id) : undefined;
  if (job.name !== 'moderation.run' || !record || record.status === 'completed' || record.status === 'failed')
    return;
  const error = new ClipmodError('internal', `processing crashed the worker repeatedly (${failedReason})`);
  await recordFailure(deps, job, error);
}

async function recordFailure(
  deps: Pick<InferenceProcessorDeps, 'store' | 'model' | 'modelNote' | 'onFinished'>,
  job: Job,
  error: unknown,
): Promise<void> {
  const id = (job.data as { moderationId?: string }).moderationId;
  const record = id ? await deps.store.get(id) : undefined;
  if (!record || record.status === 'completed') return;
  const known = isClipmodError(error) ? error : new ClipmodError('internal', 'inference failed');
  const failed: ModerationRecord = {
    ...record,
    status: 'failed',
    model: modelName(deps),
    error: { code: known.code, message: known.message },
    attempts: job.attemptsMade + 1,
    completedAt: new Date().toISOString(),
  };
  // A result another worker stored meanwhile stands (see ModerationStore.save).
  if (!(await deps.store.save(failed))) return;
  await deps.store.deleteImage(record.id);
  await deps.onFinished?.(failed);
}

function modelName(deps: Pick<InferenceProcessorDeps, 'model' | 'modelNote'>): string {
  return deps.modelNote ? `${deps.model.modelId} (${deps.modelNote})` : deps.model.modelId;
}

const round = (ms: number) => Math.round(ms * 10) / 10;
