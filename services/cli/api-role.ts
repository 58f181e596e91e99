import { AdminAuditLog } from '../../shared/audit/index.ts';
import { DEFAULT_TOKENIZER_DIR, loadClipTokenizer } from '../../shared/clip/index.ts';
import { ModerationStore } from '../../shared/moderation/index.ts';
import { imageFetchDefaults, parseCidrList, safeFetch } from '../../shared/net/index.ts';
import { PolicyStore, ShadowStats } from '../../shared/policy/index.ts';
import { createInferenceQueue, createInferenceQueueEvents } from '../../shared/queue/index.ts';
import { waitForReplicas } from '../../shared/redis/index.ts';
import { type Component, createHttpServerComponent, evaluateReadiness } from '../../shared/runtime/index.ts';
import { adminPageRouter } from '../api/admin/admin-routes.ts';
import { createAdminSession, loadAdminSessionSecret } from '../api/admin-session.ts';
import { createApp } from '../api/app.ts';
import { auditRouter } from '../api/audit-routes.ts';
import { createAuth } from '../api/auth/index.ts';
import { type BeyondRouterDeps, beyondRouter } from '../api/beyond-routes.ts';
import { type CalibrationRouterDeps, calibrationRouter } from '../api/calibration-routes.ts';
import { type ModerationRouterDeps, moderationRouter } from '../api/moderation-routes.ts';
import { ModerationService } from '../api/moderation-service.ts';
import { openAiModerationRouter } from '../api/openai-routes.ts';
import { type PolicyRouterDeps, policyRouter } from '../api/policy-routes.ts';
import { queueBoardRouter } from '../api/queue-board.ts';
import { webhookRouter } from '../api/webhook-routes.ts';
import { imageLimits, lookupOf, retentionStores, type Shared } from './serve-shared.ts';

// The `api` role: the HTTP server and every router, wired to the stores they share.

export function apiComponents(shared: Shared): {
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
      const queueEvents = createInferenceQueueEvents(
        await redis.connect('worker', 'api-events'),
        prefix,
        (error) => logger.warn({ err: error }, 'inference queue events: Redis connection error'),
      );
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
          auditRouter({
            audit: new AdminAuditLog({ redis: client, prefix }),
            policies,
            authorize: auth.modelRouteGuard.slice(0, 1),
          }),
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
