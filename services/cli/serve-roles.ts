import { availableParallelism } from 'node:os';
import type { Redis } from 'ioredis';
import {
  DEFAULT_TOKENIZER_DIR,
  loadClipTokenizer,
  loadThreadedClipModel,
  RedisTextEmbeddingCache,
} from '../../shared/clip/index.ts';
import type { Config } from '../../shared/config/index.ts';
import { type Logger, redactUrl } from '../../shared/logger/index.ts';
import { createRegistry, type Registry } from '../../shared/metrics/index.ts';
import { ModerationStore } from '../../shared/moderation/index.ts';
import { imageFetchDefaults, parseCidrList, safeFetch } from '../../shared/net/index.ts';
import { PolicyStore } from '../../shared/policy/index.ts';
import { createInferenceQueue, createInferenceQueueEvents } from '../../shared/queue/index.ts';
import {
  assertRedisIsSafe,
  connectRedis,
  type ResolvedRedis,
  resolveRedis,
} from '../../shared/redis/index.ts';
import {
  type Component,
  createHttpServerComponent,
  createProbeServer,
  evaluateReadiness,
  type Lifecycle,
  type ReadinessCheck,
} from '../../shared/runtime/index.ts';
import { createInferenceWorker } from '../../workers/inference/inference-worker.ts';
import { resolveModel } from '../../workers/inference/resolve-model.ts';
import { createApp } from '../api/app.ts';
import { createAuth } from '../api/auth/index.ts';
import { type ModerationRouterDeps, moderationRouter } from '../api/moderation-routes.ts';
import { ModerationService } from '../api/moderation-service.ts';
import { openAiModerationRouter } from '../api/openai-routes.ts';
import { policyRouter } from '../api/policy-routes.ts';

// The composition root of `clipmod serve`: the only place that wires services and workers together
// (they never import each other). Each role is a few lifecycle components; stop runs in reverse.

export const roles = ['api', 'inference'] as const;
export type Role = (typeof roles)[number];

export type ServeContext = { config: Config; logger: Logger; lifecycle: Lifecycle; roles: readonly Role[] };

type Shared = ServeContext & { registry: Registry; redis: RedisComponent; checks: ReadinessCheck[] };
type RedisComponent = Component & {
  client(): Redis;
  url(): string;
  connect(role: 'worker' | 'producer', name: string): Promise<Redis>;
};

/** Redis for this process: resolved (maybe embedded), connected, checked for noeviction/AOF. */
function redisComponent({ config, logger }: ServeContext): RedisComponent {
  let resolved: ResolvedRedis | undefined;
  let client: Redis | undefined;
  const extra: Redis[] = [];
  return {
    name: 'redis',
    client: () => client!,
    url: () => resolved!.url,
    async connect(role, name) {
      const connection = await connectRedis(resolved!.url, role, name);
      extra.push(connection);
      return connection;
    },
    async start() {
      resolved = await resolveRedis({ url: config.REDIS_URL, dataDir: `${config.CLIPMOD_DATA_DIR}/redis` });
      logger.info({ redis: redactUrl(resolved.url), source: resolved.source }, 'using Redis');
      client = await connectRedis(resolved.url, 'producer', 'main');
      await assertRedisIsSafe(client, { requireAof: config.CLIPMOD_REQUIRE_AOF });
    },
    async stop() {
      for (const connection of [...extra, client]) connection?.disconnect();
      await resolved?.embedded?.stop();
    },
  };
}

function imageLimits(config: Config) {
  return { maxPixels: config.CLIPMOD_MAX_IMAGE_PIXELS };
}

function apiComponents(shared: Shared): { components: Component[]; port(): number } {
  const { config, logger, registry, redis } = shared;
  const allowList = parseCidrList(config.CLIPMOD_ALLOW_PRIVATE_NETWORKS.join(','));
  const closers: (() => Promise<void>)[] = [];
  let app: ReturnType<typeof createApp> | undefined;
  const http = createHttpServerComponent({
    name: 'api-http',
    host: config.HOST,
    port: config.PORT,
    handler: (req, res) => app!(req, res),
  });
  const wiring: Component = {
    name: 'api-wiring',
    async start() {
      const client = redis.client();
      const prefix = config.CLIPMOD_REDIS_PREFIX;
      const queue = createInferenceQueue(client, prefix);
      const queueEvents = createInferenceQueueEvents(await redis.connect('worker', 'api-events'), prefix);
      closers.push(
        () => queueEvents.close(),
        () => queue.close(),
      );
      const auth = createAuth({
        redis: client,
        prefix,
        adminKey: config.CLIPMOD_ADMIN_KEY,
        limitPerMinute: config.CLIPMOD_RATE_LIMIT_PER_MINUTE,
        burst: config.CLIPMOD_RATE_LIMIT_BURST,
      });
      const policies = new PolicyStore({ redis: client, prefix });
      const store = new ModerationStore({
        redis: client,
        prefix,
        resultTtlSeconds: config.CLIPMOD_RESULT_TTL_SECONDS,
        imageTtlSeconds: config.CLIPMOD_IMAGE_TTL_SECONDS,
      });
      const tokenizer = await loadClipTokenizer(DEFAULT_TOKENIZER_DIR);
      const maxBytes = config.CLIPMOD_MAX_IMAGE_BYTES;
      const moderation: ModerationRouterDeps = {
        service: new ModerationService({ store, policies, queue, queueEvents }),
        guard: auth.modelRouteGuard,
        imageLimits: imageLimits(config),
        maxSyncWaitMs: config.CLIPMOD_MAX_SYNC_WAIT_MS,
        intake: {
          maxImageBytes: maxBytes,
          maxBodyBytes: Math.ceil(maxBytes * 1.4) + 65_536,
          fetchImage: async (url) =>
            (await safeFetch(url, { ...imageFetchDefaults, allowList, maxBytes })).body,
        },
      };
      app = createApp({
        logger,
        registry,
        readiness: () => evaluateReadiness(shared.lifecycle.isReady, shared.checks),
        routers: [
          auth.router,
          policyRouter({
            store: policies,
            authorize: auth.modelRouteGuard.slice(0, 1),
            countTokens: (text) => tokenizer.countTokens(text),
          }),
          moderationRouter(moderation),
          openAiModerationRouter({ ...moderation, policies }),
        ],
      });
    },
    async stop() {
      for (const close of closers.reverse()) await close();
    },
  };
  return { components: [wiring, http], port: () => http.port() };
}

function inferenceComponent(shared: Shared): Component {
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
        maxBatchSize: config.CLIPMOD_MAX_BATCH_SIZE,
        maxWaitMs: config.CLIPMOD_MAX_BATCH_WAIT_MS,
        mode: config.CLIPMOD_PREPROCESS_MODE,
        orientation: config.CLIPMOD_ORIENTATION,
        maxFrames: config.CLIPMOD_MAX_FRAMES,
        limits: imageLimits(config),
        ...(warning ? { modelNote: 'TEST MODEL: colour only' } : {}),
      });
      await worker.start();
    },
    async stop() {
      await worker?.stop();
    },
  };
}

export type Composed = {
  /** The API's listening port (0 before start or without the api role). */
  apiPort(): number;
  registry: Registry;
};

export function composeRoles(context: ServeContext): Composed {
  const { config, lifecycle } = context;
  const redis = redisComponent(context);
  const shared: Shared = { ...context, registry: createRegistry(context.roles.join('+')), redis, checks: [] };
  shared.checks.push({
    name: 'redis',
    check: async () => ({ ok: (await redis.client().ping()) === 'PONG' }),
  });
  lifecycle.add(redis);
  if (context.roles.includes('inference')) lifecycle.add(inferenceComponent(shared));
  if (context.roles.includes('api')) {
    const api = apiComponents(shared);
    for (const component of api.components) lifecycle.add(component);
    return { apiPort: api.port, registry: shared.registry };
  }
  lifecycle.add(
    createProbeServer({
      host: config.HOST,
      port: config.CLIPMOD_PROBE_PORT,
      registry: shared.registry,
      isStarted: () => lifecycle.isReady,
      checks: shared.checks,
    }),
  );
  return { apiPort: () => 0, registry: shared.registry };
}
