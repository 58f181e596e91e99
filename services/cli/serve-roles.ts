import { availableParallelism } from 'node:os';
import type { Queue } from 'bullmq';
import {
  DEFAULT_TOKENIZER_DIR,
  loadClipTokenizer,
  loadThreadedClipModel,
  RedisTextEmbeddingCache,
} from '../../shared/clip/index.ts';
import type { Config } from '../../shared/config/index.ts';
import type { Logger } from '../../shared/logger/index.ts';
import { createRegistry, type Registry } from '../../shared/metrics/index.ts';
import { ModerationStore } from '../../shared/moderation/index.ts';
import { type HostLookup, imageFetchDefaults, parseCidrList, safeFetch } from '../../shared/net/index.ts';
import { PolicyStore, ShadowStats } from '../../shared/policy/index.ts';
import {
  createInferenceQueue,
  createInferenceQueueEvents,
  observeQueueDepth,
  openCatalogQueues,
} from '../../shared/queue/index.ts';
import {
  assertRedisIsSafe,
  observeRedis,
  openRedis,
  type RedisConnection,
  type RedisRole,
  type ResolvedRedis,
  redactRedisUrl,
  resolveRedis,
  waitForReplicas,
} from '../../shared/redis/index.ts';
import { KnownBadBank, RetainedEmbeddings, TenantSettingsStore } from '../../shared/retention/index.ts';
import {
  type Component,
  createFaultInjector,
  createHttpServerComponent,
  createProbeServer,
  evaluateReadiness,
  type Lifecycle,
  type ReadinessCheck,
} from '../../shared/runtime/index.ts';
import { createWebhookServices, defaultJitter, type WebhookServices } from '../../shared/webhooks/index.ts';
import { createInferenceWorker } from '../../workers/inference/inference-worker.ts';
import { resolveModel } from '../../workers/inference/resolve-model.ts';
import { createWebhookWorker } from '../../workers/webhooks/webhook-worker.ts';
import { adminPageRouter } from '../api/admin/admin-routes.ts';
import { createAdminSession, loadAdminSessionSecret } from '../api/admin-session.ts';
import { createApp } from '../api/app.ts';
import { createAuth } from '../api/auth/index.ts';
import { type BeyondRouterDeps, beyondRouter } from '../api/beyond-routes.ts';
import { type CalibrationRouterDeps, calibrationRouter } from '../api/calibration-routes.ts';
import { type ModerationRouterDeps, moderationRouter } from '../api/moderation-routes.ts';
import { ModerationService } from '../api/moderation-service.ts';
import { openAiModerationRouter } from '../api/openai-routes.ts';
import { type PolicyRouterDeps, policyRouter } from '../api/policy-routes.ts';
import { queueBoardRouter } from '../api/queue-board.ts';
import { webhookRouter } from '../api/webhook-routes.ts';

// The composition root of `clipmod serve`: the only place that wires services and workers together
// (they never import each other). Each role is a few lifecycle components; stop runs in reverse.

export const roles = ['api', 'inference', 'webhooks'] as const;
export type Role = (typeof roles)[number];

export type ServeContext = {
  config: Config;
  logger: Logger;
  lifecycle: Lifecycle;
  roles: readonly Role[];
  /** DNS for outbound URLs (image fetches, webhook URLs and sends); injected by SSRF tests only. */
  lookup?: HostLookup;
};

type Shared = ServeContext & {
  registry: Registry;
  redis: RedisComponent;
  checks: ReadinessCheck[];
  /** Every queue of the catalog, for depth metrics and the admin board (after start). */
  queues: Queue[];
  /** Webhook stores, queue and dispatcher: the API, the inference finish hook and the webhook worker share them. */
  webhooks: WebhookServicesComponent;
};
type RedisComponent = Component & {
  client(): RedisConnection;
  url(): string;
  connect(role: RedisRole, name: string): Promise<RedisConnection>;
  /** Every connection this process opened, by name (Redis metrics). */
  connections(): ReadonlyMap<string, RedisConnection>;
};

/**
 * Redis for this process: resolved (maybe embedded), connected, checked for noeviction/AOF. REDIS_URL's
 * scheme picks standalone, Sentinel or Cluster; every connection below comes from openRedis.
 */
function redisComponent({ config, logger }: ServeContext): RedisComponent {
  let resolved: ResolvedRedis | undefined;
  let client: RedisConnection | undefined;
  const connections = new Map<string, RedisConnection>();
  return {
    name: 'redis',
    client: () => client!,
    url: () => resolved!.url,
    connections: () => connections,
    async connect(role, name) {
      const connection = await openRedis(resolved!.url, role, name);
      connections.set(connections.has(name) ? `${name}-${connections.size}` : name, connection);
      return connection;
    },
    async start() {
      resolved = await resolveRedis({ url: config.REDIS_URL, dataDir: `${config.CLIPMOD_DATA_DIR}/redis` });
      logger.info({ redis: redactRedisUrl(resolved.url), source: resolved.source }, 'using Redis');
      client = await openRedis(resolved.url, 'producer', 'main');
      connections.set('main', client);
      await assertRedisIsSafe(client, { requireAof: config.CLIPMOD_REQUIRE_AOF });
    },
    async stop() {
      for (const connection of connections.values()) connection.disconnect();
      await resolved?.embedded?.stop();
    },
  };
}

function imageLimits(config: Config) {
  return { maxPixels: config.CLIPMOD_MAX_IMAGE_PIXELS };
}

function apiComponents(shared: Shared): {
  components: Component[];
  port(): number;
  app(): ReturnType<typeof createApp> | undefined;
} {
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
      // Its own `request` connection: a hung Redis fails request commands in 750 ms, so clients get
      // 503 within 1 s, while the process's main connection keeps the producer's 2 s.
      const client = await redis.connect('request', 'api');
      const prefix = config.CLIPMOD_REDIS_PREFIX;
      // WAIT blocks the connection it runs on and counts that connection's writes: submissions get
      // their own connection when replicas must confirm them (see waitForReplicas).
      const replicas = config.CLIPMOD_REDIS_WAIT_REPLICAS;
      const submissions = replicas > 0 ? await redis.connect('request', 'api-submissions') : client;
      const queue = createInferenceQueue(submissions, prefix);
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
        redis: submissions,
        prefix,
        resultTtlSeconds: config.CLIPMOD_RESULT_TTL_SECONDS,
        imageTtlSeconds: config.CLIPMOD_IMAGE_TTL_SECONDS,
      });
      const awaitReplicas = () => waitForReplicas(submissions, { key: prefix, replicas, timeoutMs: 1_000 });
      const tokenizer = await loadClipTokenizer(DEFAULT_TOKENIZER_DIR);
      const adminSession = createAdminSession({
        store: auth.store,
        secret: await loadAdminSessionSecret(client, prefix),
      });
      const maxBytes = config.CLIPMOD_MAX_IMAGE_BYTES;
      const moderation: ModerationRouterDeps = {
        service: new ModerationService({
          store,
          policies,
          queue,
          queueEvents,
          ...(replicas > 0 ? { awaitReplicas } : {}),
        }),
        guard: auth.modelRouteGuard,
        imageLimits: imageLimits(config),
        maxSyncWaitMs: config.CLIPMOD_MAX_SYNC_WAIT_MS,
        intake: {
          maxImageBytes: maxBytes,
          maxBodyBytes: Math.ceil(maxBytes * 1.4) + 65_536,
          fetchImage: async (url) =>
            (await safeFetch(url, { ...imageFetchDefaults, allowList, maxBytes, ...lookupOf(shared) })).body,
        },
      };
      // Mounted twice: for API clients (Bearer key) and, under /admin/api, for the admin page (session).
      const policyApi: Omit<PolicyRouterDeps, 'authorize'> = {
        store: policies,
        countTokens: (text) => tokenizer.countTokens(text),
        shadowStats: new ShadowStats({ redis: client, prefix }),
        dryRun: {
          intake: moderation.intake,
          imageLimits: moderation.imageLimits,
          maxSyncWaitMs: moderation.maxSyncWaitMs,
          rateLimit: auth.rateLimit,
          run: (payload, image, waitMs) => moderation.service.run('policy.test', payload, image, waitMs),
        },
      };
      // Mounted twice as well, like policyApi: the admin page shows the bank, search and calibration.
      const beyondApi: Omit<BeyondRouterDeps, 'authorize'> = {
        ...retentionStores(client, prefix),
        policies,
        intake: moderation.intake,
        imageLimits: moderation.imageLimits,
        maxSyncWaitMs: moderation.maxSyncWaitMs,
        embed: (payload, image, waitMs) => moderation.service.run('embedding.run', payload, image, waitMs),
      };
      const calibrationApi: Omit<CalibrationRouterDeps, 'authorize'> = {
        policies,
        imageLimits: moderation.imageLimits,
        maxSyncWaitMs: moderation.maxSyncWaitMs,
        run: policyApi.dryRun!.run,
      };
      app = createApp({
        logger,
        registry,
        readiness: () => evaluateReadiness(shared.lifecycle.isReady, shared.checks),
        routers: [
          auth.router,
          policyRouter({ ...policyApi, authorize: auth.modelRouteGuard.slice(0, 1) }),
          moderationRouter(moderation),
          openAiModerationRouter({ ...moderation, policies }),
          adminSession.router,
          queueBoardRouter({ queues: shared.queues, guard: adminSession.requireOperator }),
          adminPageRouter({
            guard: adminSession.requireAdmin,
            policyApi: policyRouter({ ...policyApi, authorize: [] }),
            moreApis: [
              beyondRouter({ ...beyondApi, authorize: [] }),
              calibrationRouter({ ...calibrationApi, authorize: [] }),
            ],
          }),
          beyondRouter({ ...beyondApi, authorize: auth.modelRouteGuard.slice(0, 1) }),
          calibrationRouter({ ...calibrationApi, authorize: auth.modelRouteGuard.slice(0, 1) }),
          webhookRouter({
            ...shared.webhooks.services(),
            authorize: auth.modelRouteGuard.slice(0, 1),
            urlPolicy: { allowList, ...lookupOf(shared) },
          }),
        ],
      });
    },
    async stop() {
      for (const close of closers.reverse()) await close();
    },
  };
  return { components: [wiring, http], port: () => http.port(), app: () => app };
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

/** Tenant settings, retained embeddings and the known-bad bank: the API and the inference worker share them. */
function retentionStores(redis: RedisConnection, prefix: string) {
  return {
    settings: new TenantSettingsStore({ redis, prefix }),
    bank: new KnownBadBank({ redis, prefix }),
    retained: new RetainedEmbeddings({ redis, prefix }),
  };
}

/** Every queue of the catalog, opened once per process: depth on every /metrics, the admin board. */
function catalogQueuesComponent(shared: Shared): Component {
  return {
    name: 'catalog-queues',
    async start() {
      shared.queues.push(...openCatalogQueues(shared.redis.client(), shared.config.CLIPMOD_REDIS_PREFIX));
      observeQueueDepth(shared.registry, shared.queues);
    },
    async stop() {
      await Promise.all(shared.queues.map((queue) => queue.close()));
    },
  };
}

type WebhookServicesComponent = Component & { services(): WebhookServices };

function webhookServicesComponent(config: Config, redis: RedisComponent): WebhookServicesComponent {
  let services: WebhookServices | undefined;
  return {
    name: 'webhook-services',
    services: () => services!,
    async start() {
      services = createWebhookServices({
        redis: redis.client(),
        prefix: config.CLIPMOD_REDIS_PREFIX,
        sealingKey: config.CLIPMOD_WEBHOOK_SECRET_KEY,
        retentionSeconds: config.CLIPMOD_WEBHOOK_RETENTION_SECONDS,
      });
    },
    async stop() {
      await services?.close();
    },
  };
}

const lookupOf = (context: ServeContext) => (context.lookup ? { lookup: context.lookup } : {});

/** The delivery worker of the `webhooks` role. */
function webhookWorkerComponent(shared: Shared): Component {
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

export type Composed = {
  /** The API's listening port (0 before start or without the api role). */
  apiPort(): number;
  /** The probe server's port (/livez, /readyz, /metrics) of a process without the api role, else 0. */
  probePort(): number;
  /** The API's express app once started (tests walk its route table), else undefined. */
  apiApp(): ReturnType<typeof createApp> | undefined;
  registry: Registry;
};

export function composeRoles(context: ServeContext): Composed {
  const { config, lifecycle } = context;
  const redis = redisComponent(context);
  const registry = createRegistry(context.roles.join('+'));
  const webhooks = webhookServicesComponent(config, redis);
  const shared: Shared = { ...context, registry, redis, checks: [], queues: [], webhooks };
  shared.checks.push({
    name: 'redis',
    check: async () => ({ ok: (await redis.client().ping()) === 'PONG' }),
  });
  observeRedis(registry, { connections: redis.connections, infoClient: () => redis.client() });
  lifecycle.add(redis);
  lifecycle.add(catalogQueuesComponent(shared));
  lifecycle.add(webhooks);
  if (context.roles.includes('inference')) lifecycle.add(inferenceComponent(shared));
  if (context.roles.includes('webhooks')) lifecycle.add(webhookWorkerComponent(shared));
  if (context.roles.includes('api')) {
    const api = apiComponents(shared);
    for (const component of api.components) lifecycle.add(component);
    return { apiPort: api.port, probePort: () => 0, apiApp: api.app, registry: shared.registry };
  }
  const probe = createProbeServer({
    host: config.HOST,
    port: config.CLIPMOD_PROBE_PORT,
    registry: shared.registry,
    isStarted: () => lifecycle.isReady,
    checks: shared.checks,
  });
  lifecycle.add(probe);
  return { apiPort: () => 0, probePort: probe.port, apiApp: () => undefined, registry: shared.registry };
}
