import { availableParallelism } from 'node:os';
import { loadThreadedClipModel, RedisTextEmbeddingCache } from '../../shared/clip/index.ts';
import { ModerationStore } from '../../shared/moderation/index.ts';
import { parseCidrList } from '../../shared/net/index.ts';
import { PolicyStore, ShadowStats } from '../../shared/policy/index.ts';
import { type Component, createFaultInjector } from '../../shared/runtime/index.ts';
import { defaultJitter } from '../../shared/webhooks/index.ts';
import { createInferenceWorker } from '../../workers/inference/inference-worker.ts';
import { resolveModel } from '../../workers/inference/resolve-model.ts';
import { createWebhookWorker } from '../../workers/webhooks/webhook-worker.ts';
import { imageLimits, lookupOf, retentionStores, type Shared } from './serve-shared.ts';

// The worker roles, `inference` and `webhooks`: with serve-roles.ts, the only files of services/ that
// import workers/ (test/unit/module-boundaries.test.ts).

export function inferenceComponent(shared: Shared): Component {
  const { config, logger, registry, redis } = shared;
  let warning: string | undefined;
  let worker: ReturnType<typeof createInferenceWorker> | undefined;
  shared.checks.push({
    name: 'model',
    check: async () => ({ ok: worker?.model() !== undefined, ...(warning ? { warning } : {}) }),
  });
  return {
    name: 'inference',
    async start() {
      const prefix = config.CLIPMOD_REDIS_PREFIX;
      const client = redis.client();
      const resolved = await resolveModel({
        modelDir: config.MODEL_DIR,
        cacheDir: config.CLIPMOD_MODEL_CACHE_DIR,
        logger,
        hubEndpoint: config.HF_ENDPOINT,
        ...(config.HF_TOKEN ? { hubToken: config.HF_TOKEN } : {}),
      });
      warning = resolved.warning;
      worker = createInferenceWorker({
        loadModel: () =>
          loadThreadedClipModel(resolved.folder, {
            provider: config.CLIPMOD_EXECUTION_PROVIDER,
            // Decoding runs beside inference in this process: leave it a core (measured: throughput
            // ÷ raw loop 0.76 with every core for ONNX, 0.94 with one left free, 2-core CPU).
            intraOpThreads: config.CLIPMOD_INTRA_OP_THREADS || Math.max(1, availableParallelism() - 1),
            logger,
          }),
        connection: await redis.connect('worker', 'inference'),
        prefix,
        concurrency: config.CLIPMOD_WORKER_CONCURRENCY || config.CLIPMOD_MAX_BATCH_SIZE * 2,
        lockDurationMs: config.CLIPMOD_LOCK_DURATION_MS,
        registry,
        logger,
        store: new ModerationStore({
          redis: client,
          prefix,
          resultTtlSeconds: config.CLIPMOD_RESULT_TTL_SECONDS,
          imageTtlSeconds: config.CLIPMOD_IMAGE_TTL_SECONDS,
        }),
        textCache: new RedisTextEmbeddingCache({ redis: client, keyPrefix: `${prefix}:text-embedding:` }),
        loadPolicy: async (tenant, id, version) =>
          (await new PolicyStore({ redis: client, prefix }).get(tenant, id, version))?.document,
        policyChanges: await redis.connect('worker', 'policy-changes'),
        beyond: {
          ...retentionStores(client, prefix),
          publish: (event) => shared.webhooks.services().dispatcher.publish(event),
          rescoreSubscriber: await redis.connect('worker', 'policy-rescoring'),
          claimer: client,
        },
        queueEvents: await redis.connect('worker', 'inference-events'),
        shadowStats: new ShadowStats({ redis: client, prefix }),
        maxBatchSize: config.CLIPMOD_MAX_BATCH_SIZE,
        maxWaitMs: config.CLIPMOD_MAX_BATCH_WAIT_MS,
        mode: config.CLIPMOD_PREPROCESS_MODE,
        orientation: config.CLIPMOD_ORIENTATION,
        maxFrames: config.CLIPMOD_MAX_FRAMES,
        limits: imageLimits(config),
        ...(warning ? { modelNote: 'TEST MODEL: colour only' } : {}),
        ...(config.CLIPMOD_FAULT_INJECTION ? { faults: createFaultInjector(true) } : {}),
        onFinished: async (record) => {
          await shared.webhooks.services().dispatcher.publishModeration(record);
        },
      });
      await worker.start();
    },
    async stop() {
      await worker?.stop();
    },
  };
}

/** The delivery worker of the `webhooks` role. */
export function webhookWorkerComponent(shared: Shared): Component {
  const { config, logger, registry, redis } = shared;
  let worker: ReturnType<typeof createWebhookWorker> | undefined;
  shared.checks.push({ name: 'webhook-worker', check: async () => ({ ok: worker?.isRunning() ?? false }) });
  return {
    name: 'webhooks',
    async start() {
      worker = createWebhookWorker({
        ...shared.webhooks.services(),
        connection: await redis.connect('worker', 'webhooks'),
        prefix: config.CLIPMOD_REDIS_PREFIX,
        concurrency: config.CLIPMOD_WEBHOOK_CONCURRENCY,
        lockDurationMs: config.CLIPMOD_LOCK_DURATION_MS,
        ...(config.CLIPMOD_FAULT_INJECTION ? { faults: createFaultInjector(true) } : {}),
        registry,
        logger,
        settings: {
          schedule: config.CLIPMOD_WEBHOOK_RETRY_SCHEDULE_MS,
          jitter: defaultJitter,
          timeoutMs: config.CLIPMOD_WEBHOOK_TIMEOUT_MS,
          disableAfterMs: config.CLIPMOD_WEBHOOK_DISABLE_AFTER_MS,
          allowList: parseCidrList(config.CLIPMOD_ALLOW_PRIVATE_NETWORKS.join(',')),
          ...lookupOf(shared),
        },
      });
      await worker.start();
    },
    async stop() {
      await worker?.stop();
    },
  };
}
