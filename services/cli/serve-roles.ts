import { createRegistry, type Registry } from '../../shared/metrics/index.ts';
import { observeRedis } from '../../shared/redis/index.ts';
import { createProbeServer } from '../../shared/runtime/index.ts';
import type { createApp } from '../api/app.ts';
import { apiComponents } from './api-role.ts';
import {
  catalogQueuesComponent,
  redisComponent,
  type ServeContext,
  type Shared,
  webhookServicesComponent,
} from './serve-shared.ts';
import { inferenceComponent, webhookWorkerComponent } from './worker-roles.ts';

// The composition root of `clipmod serve`: the only place that wires services and workers together
// (they never import each other; the worker roles are built in worker-roles.ts, the api role in
// api-role.ts). Each role is a few lifecycle components; stop runs in reverse.

export { type Role, roles, type ServeContext } from './serve-shared.ts';

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
