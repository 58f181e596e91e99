import { Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { ClipModel } from '../../shared/clip/index.ts';
import { Counter, Gauge, Histogram, type Registry } from '../../shared/metrics/index.ts';
import { queueNames } from '../../shared/queue/index.ts';
import type { Component } from '../../shared/runtime/index.ts';
import { ImageEmbedder, type ImageEmbedderOptions } from './image-embedder.ts';
import { createInferenceProcessor, type InferenceProcessorDeps } from './inference-processor.ts';

export type InferenceWorkerOptions = Omit<InferenceProcessorDeps, 'embedder' | 'model' | 'onTextCache'> &
  Omit<ImageEmbedderOptions, 'model' | 'onBatch'> & {
    /** Loads the model; called once at start, before the worker takes any job. */
    loadModel(): Promise<ClipModel>;
    /** A worker-role connection (maxRetriesPerRequest null); BullMQ duplicates it for blocking calls. */
    connection: Redis;
    prefix: string;
    concurrency: number;
    lockDurationMs: number;
    registry: Registry;
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
  const metrics = inferenceMetrics(options.registry, options.maxBatchSize);
  return {
    name: 'inference-worker',
    model: () => model,
    async start() {
      const loadStartedAt = performance.now();
      model = await options.loadModel();
      await model.warmUp();
      metrics.modelLoad.set((performance.now() - loadStartedAt) / 1000);
      const embedder = new ImageEmbedder({ ...options, model, onBatch: metrics.observeBatch });
      const processor = createInferenceProcessor({
        ...options,
        model,
        embedder,
        onTextCache: metrics.observeTextCache,
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
      worker.on('completed', (job) => metrics.jobs.inc({ name: job.name, outcome: 'completed' }));
      worker.on('failed', (job) => metrics.jobs.inc({ name: job?.name ?? 'unknown', outcome: 'failed' }));
      void worker.run();
      options.logger.info(
        { model: model.modelId, provider: model.provider, concurrency: options.concurrency },
        'inference worker taking jobs',
      );
    },
    async stop() {
      await worker?.close();
      await model?.close();
    },
  };
}

function inferenceMetrics(registry: Registry, maxBatchSize: number) {
  const batchSize = new Histogram({
    name: 'clipmod_inference_batch_size',
    help: 'Images per ONNX call.',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256].filter((b) => b <= Math.max(1, maxBatchSize * 2)),
    registers: [registry],
  });
  const batchSeconds = new Histogram({
    name: 'clipmod_inference_batch_duration_seconds',
    help: 'Time of one batched image-encoder call, normalisation included.',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const jobs = new Counter({
    name: 'clipmod_inference_jobs_total',
    help: 'Inference jobs by name and outcome.',
    labelNames: ['name', 'outcome'],
    registers: [registry],
  });
  const textCache = new Counter({
    name: 'clipmod_text_embedding_cache_total',
    help: 'Text-embedding cache lookups by result.',
    labelNames: ['result'],
    registers: [registry],
  });
  const modelLoad = new Gauge({
    name: 'clipmod_model_load_seconds',
    help: 'Time to load and warm up the model.',
    registers: [registry],
  });
  return {
    jobs,
    modelLoad,
    observeBatch: (size: number, durationMs: number) => {
      batchSize.observe(size);
      batchSeconds.observe(durationMs / 1000);
    },
    observeTextCache: (hits: number, misses: number) => {
      textCache.inc({ result: 'hit' }, hits);
      textCache.inc({ result: 'miss' }, misses);
    },
  };
}
