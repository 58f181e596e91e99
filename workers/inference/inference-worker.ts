import { Job, type QueueEvents, Worker } from 'bullmq';
import type { Cluster, Redis } from 'ioredis';
import type { ClipModel } from '../../shared/clip/index.ts';
import type { Registry } from '../../shared/metrics/index.ts';
import type { ModerationRecord } from '../../shared/moderation/index.ts';
import { createInferenceQueueEvents, observeJobOutcomes, queueNames } from '../../shared/queue/index.ts';
import type { Component } from '../../shared/runtime/index.ts';
import { type BeyondModerationOptions, startBeyondModeration } from './beyond-moderation.ts';
import { ImageEmbedder, type ImageEmbedderOptions } from './image-embedder.ts';
import { type InferenceMetrics, inferenceMetrics } from './inference-metrics.ts';
import {
  createInferenceProcessor,
  type InferenceProcessorDeps,
  recordStalledFailure,
} from './inference-processor.ts';
import { startPolicyPrewarm } from './policy-prewarm.ts';
import { PreparedPolicies } from './prepared-policies.ts';

export type InferenceWorkerOptions = Omit<
  InferenceProcessorDeps,
  'embedder' | 'model' | 'onTextCache' | 'preparedPolicies'
> &
  Omit<ImageEmbedderOptions, 'model' | 'onBatch' | 'onPreprocess'> & {
    /** Loads the model; called once at start, before the worker takes any job. */
    loadModel(): Promise<ClipModel>;
    /** A worker-role connection (maxRetriesPerRequest null); BullMQ duplicates it for blocking calls. */
    connection: Redis | Cluster;
    prefix: string;
    concurrency: number;
    lockDurationMs: number;
    registry: Registry;
    /** A dedicated connection for the policy change channel (hot reload); unset: prepare on first use. */
    policyChanges?: Redis | Cluster;
    /** Retention, the known-bad bank and re-scoring on policy change; unset: none of them. */
    beyond?: BeyondModerationOptions;
    /**
     * A dedicated connection for the queue's events: jobs that BullMQ fails for stalling too often
     * (a poison pill crashing every worker that takes it) are recorded as failed moderations here.
     */
    queueEvents?: Redis | Cluster;
  };

/**
 * The inference worker as a lifecycle component. It starts paused: the model is loaded and warmed up
 * first, and only then does the worker take jobs. stop() closes the worker, which waits for active
 * jobs — their batches keep flushing — then releases the model.
 */
export function createInferenceWorker(
  options: InferenceWorkerOptions,
): Component & { model(): ClipModel | undefined } {
  let model: ClipModel | undefined;
  let worker: Worker | undefined;
  let prewarm: { stop(): Promise<void> } | undefined;
  let beyond: { stop(): Promise<void> } | undefined;
  let events: QueueEvents | undefined;
  const metrics = inferenceMetrics(options.registry, options.maxBatchSize);
  return {
    name: 'inference-worker',
    model: () => model,
    async start() {
      const loadStartedAt = performance.now();
      model = await options.loadModel();
      const warmupStartedAt = performance.now();
      await model.warmUp();
      metrics.observeModelStart(model, warmupStartedAt - loadStartedAt, performance.now() - warmupStartedAt);
      const embedder = new ImageEmbedder({
        ...options,
        model,
        onBatch: metrics.observeBatch,
        onPreprocess: metrics.observePreprocess,
      });
      const preparedPolicies = new PreparedPolicies({
        ...options,
        model,
        onTextCache: metrics.observeTextCache,
      });
      if (options.policyChanges) {
        const { prefix, logger } = options;
        prewarm = await startPolicyPrewarm({
          subscriber: options.policyChanges,
          prefix,
          policies: preparedPolicies,
          logger,
        });
      }
      const { prefix, logger } = options;
      const started = options.beyond
        ? await startBeyondModeration(options.beyond, { model, policies: preparedPolicies, prefix, logger })
        : undefined;
      beyond = started;
      const processor = createInferenceProcessor({
        ...options,
        ...(started ? { extensions: started.extensions } : {}),
        model,
        embedder,
        preparedPolicies,
        onTextCache: metrics.observeTextCache,
        onFinished: (record) => finished(options, metrics, record),
      });
      worker = new Worker(queueNames.inference, processor, {
        connection: options.connection,
        prefix: options.prefix,
        concurrency: options.concurrency,
        lockDuration: options.lockDurationMs,
        stalledInterval: Math.max(1_000, Math.floor(options.lockDurationMs / 2)),
        maxStalledCount: 2,
        autorun: false,
      });
      worker.on('error', (error) => options.logger.error({ err: error }, 'inference worker error'));
      observeJobOutcomes(options.registry, worker);
      if (options.queueEvents) events = watchStalledFailures(options, worker, model);
      void worker.run();
      options.logger.info(
        { model: model.modelId, provider: model.provider, concurrency: options.concurrency },
        'inference worker taking jobs',
      );
    },
    async stop() {
      await prewarm?.stop();
      await beyond?.stop();
      await events?.close();
      await worker?.close();
      await model?.close();
    },
  };
}

function watchStalledFailures(options: InferenceWorkerOptions, worker: Worker, model: ClipModel) {
  const events = createInferenceQueueEvents(options.queueEvents!, options.prefix, (error) =>
    options.logger.warn({ err: error }, 'inference queue events: Redis connection error'),
  );
  events.on('failed', ({ jobId, failedReason }) => {
    if (!failedReason.includes('stalled')) return;
    void (async () => {
      const job = await Job.fromId(worker, jobId);
      if (!job) return;
      options.logger.error({ jobId, failedReason }, 'job failed after crashing its worker repeatedly');
      await recordStalledFailure({ ...options, model }, job, failedReason);
    })().catch((error: unknown) =>
      options.logger.error({ err: error, jobId }, 'could not record a stalled job as failed'),
    );
  });
  return events;
}

/**
 * Metrics and the log line that ties the moderation to the request that submitted it, then the
 * caller's own hook. A job redelivered after a crash reaches this twice (at-least-once), which
 * counts that verdict twice: rare, and cheaper than a dedupe key per moderation in Redis.
 */
async function finished(
  options: InferenceWorkerOptions,
  metrics: InferenceMetrics,
  record: ModerationRecord,
): Promise<void> {
  metrics.observeModeration(record);
  options.logger.info(
    {
      requestId: record.requestId,
      moderationId: record.id,
      jobId: record.id,
      status: record.status,
      action: record.verdict?.action,
      errorCode: record.error?.code,
      totalMs: record.timings?.totalMs,
    },
    'moderation finished',
  );
  await options.onFinished?.(record);
}
