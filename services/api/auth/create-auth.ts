import type { RequestHandler, Router } from 'express';
import type { Cluster, Redis } from 'ioredis';
import { apiKeyRouter } from './api-key-routes.ts';
import { ApiKeyStore } from './api-key-store.ts';
import { authenticate, requireScope } from './authenticate.ts';
import { rateLimit } from './rate-limit.ts';

export type AuthOptions = {
  /** Producer connection (no offline queue), so a Redis outage answers 503 at once. */
  redis: Redis | Cluster;
  /** CLIPMOD_REDIS_PREFIX. */
  prefix: string;
  /** CLIPMOD_ADMIN_KEY. */
  adminKey: string | undefined;
  /** CLIPMOD_RATE_LIMIT_PER_MINUTE; 0 disables limiting. */
  limitPerMinute: number;
  /** CLIPMOD_RATE_LIMIT_BURST. */
  burst: number;
  now?: () => number;
};

export type Auth = {
  store: ApiKeyStore;
  /** Mount with createApp's routers: /v1/api-keys administration. */
  router: Router;
  /** The per-key limiter alone, for routes that compose their own chain. */
  rateLimit: RequestHandler;
  /** authenticate → moderate scope → rate limit: put in front of every /v1 and /openai/v1 model route. */
  modelRouteGuard: RequestHandler[];
};

/** Everything auth needs, wired once from settings (the composition root and the test harness). */
export function createAuth(options: AuthOptions): Auth {
  const store = new ApiKeyStore({ redis: options.redis, prefix: options.prefix, adminKey: options.adminKey });
  const limiter = rateLimit(options);
  return {
    store,
    router: apiKeyRouter({ store }),
    rateLimit: limiter,
    modelRouteGuard: [authenticate(store), requireScope('moderate'), limiter],
  };
}
