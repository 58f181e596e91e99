import express, { type Request, type RequestHandler, type Router } from 'express';
import { z } from 'zod';
import { ClipmodError } from '../../shared/errors/index.ts';
import {
  type AttemptRecord,
  checkWebhookUrl,
  type DeliveryLog,
  type DeliveryRecord,
  defaultEventTypes,
  deliveryStatuses,
  type WebhookDispatcher,
  type WebhookEndpoint,
  type WebhookEndpointStore,
  type WebhookUrlPolicy,
  webhookEventTypes,
} from '../../shared/webhooks/index.ts';
import { principalOf, requireScope } from './auth/index.ts';
import { parseOr400 } from './parse-input.ts';

// Webhook administration (admin scope): endpoints of the caller's own tenant, secret rotation, the
// delivery log and replays. Another tenant's ids answer 404 exactly like missing ones. Every change
// names its caller, for the admin audit log the stores and the dispatcher append to.

export type WebhookRouterDeps = {
  endpoints: WebhookEndpointStore;
  log: DeliveryLog;
  dispatcher: WebhookDispatcher;
  /** Runs before every route: authentication (the admin scope is checked here). */
  authorize: readonly RequestHandler[];
  /** The registration-time address check; every send checks again. */
  urlPolicy: WebhookUrlPolicy;
};

const eventTypes = z.array(z.enum(webhookEventTypes)).min(1).max(webhookEventTypes.length);
const description = z.string().max(500);
const createBody = z
  .object({
    url: z.string(),
    eventTypes: eventTypes.optional(),
    description: description.optional(),
    enabled: z.boolean().optional(),
  })
  .strict();
const updateBody = createBody.partial().strict();
const rotateBody = z
  .object({
    overlapSeconds: z
      .number()
      .int()
      .min(0)
      .max(7 * 86_400)
      .optional(),
  })
  .strict();
const replayFailedBody = z.object({ since: z.iso.datetime({ offset: true }) }).strict();
const deliveriesQuery = z.object({
  status: z.enum(deliveryStatuses).optional(),
  limit: z.coerce.number().int().min(1).max(250).optional(),
  before: z.iso.datetime({ offset: true }).optional(),
});

/** Svix's default: a day in which receivers holding either secret verify. */
const defaultOverlapSeconds = 86_400;

export function webhookRouter(deps: WebhookRouterDeps): Router {
  const router = express.Router();
  const { endpoints } = deps;
  // Per route, not router.use(): this router is mounted at the root beside others.
  const guard: RequestHandler[] = [...deps.authorize, requireScope('admin')];
  const json = express.json({ limit: '16kb' });
  const tenantOf = (res: express.Response) => principalOf(res).tenant;
  const endpointOf = async (req: Request, tenant: string) =>
    (await endpoints.get(tenant, String(req.params.id))) ?? notFound('webhook endpoint', req);

  router.post('/v1/webhook-endpoints', ...guard, json, async (req, res) => {
    const body = parseOr400(createBody, req.body);
    const { endpoint, secret } = await endpoints.create(
      {
        tenant: tenantOf(res),
        url: await checkWebhookUrl(body.url, deps.urlPolicy),
        eventTypes: body.eventTypes ?? defaultEventTypes,
        description: body.description ?? '',
        isEnabled: body.enabled ?? true,
      },
      principalOf(res),
    );
    res
      .status(201)
      .location(`/v1/webhook-endpoints/${endpoint.id}`)
      .json({ ...endpointView(endpoint), secret });
  });

  router.get('/v1/webhook-endpoints', ...guard, async (_req, res) => {
    res.json({ data: (await endpoints.list(tenantOf(res))).map(endpointView) });
  });

  router.get('/v1/webhook-endpoints/:id', ...guard, async (req, res) => {
    res.json(endpointView(await endpointOf(req, tenantOf(res))));
  });

  router.patch('/v1/webhook-endpoints/:id', ...guard, json, async (req, res) => {
    const tenant = tenantOf(res);
    const { id } = await endpointOf(req, tenant);
    const { enabled, url, ...rest } = parseOr400(updateBody, req.body);
    const checkedUrl = url === undefined ? {} : { url: await checkWebhookUrl(url, deps.urlPolicy) };
    const switched = enabled === undefined ? {} : { isEnabled: enabled };
    const endpoint = await endpoints.update(
      tenant,
      id,
      { ...rest, ...checkedUrl, ...switched },
      principalOf(res),
    );
    res.json(endpointView(endpoint ?? notFound('webhook endpoint', req)));
  });

  router.delete('/v1/webhook-endpoints/:id', ...guard, async (req, res) => {
    if (!(await endpoints.remove(tenantOf(res), String(req.params.id), principalOf(res)))) {
      notFound('webhook endpoint', req);
    }
    res.status(204).end();
  });

  router.post('/v1/webhook-endpoints/:id/rotate-secret', ...guard, json, async (req, res) => {
    const { overlapSeconds = defaultOverlapSeconds } = parseOr400(rotateBody, req.body);
    const id = String(req.params.id);
    const rotated = await endpoints.rotateSecret(tenantOf(res), id, overlapSeconds * 1000, principalOf(res));
    if (!rotated) notFound('webhook endpoint', req);
    res.json({ ...endpointView(rotated.endpoint), secret: rotated.secret });
  });

  router.get('/v1/webhook-endpoints/:id/deliveries', ...guard, async (req, res) => {
    const { id } = await endpointOf(req, tenantOf(res));
    const query = parseOr400(deliveriesQuery, req.query);
    const deliveries = await deps.log.listForEndpoint(id, {
      limit: query.limit ?? 50,
      beforeMs: query.before === undefined ? undefined : Date.parse(query.before),
      status: query.status,
    });
    res.json({
      data: await Promise.all(deliveries.map(async (d) => deliveryView(d, await deps.log.attempts(d.id)))),
    });
  });

  router.post('/v1/webhook-endpoints/:id/replay-failed', ...guard, json, async (req, res) => {
    const { since } = parseOr400(replayFailedBody, req.body);
    const id = String(req.params.id);
    const sinceMs = Date.parse(since);
    res
      .status(202)
      .json(await deps.dispatcher.replayFailedSince(tenantOf(res), id, sinceMs, principalOf(res)));
  });

  router.get('/v1/webhook-deliveries/:id', ...guard, async (req, res) => {
    const delivery = await deps.log.get(String(req.params.id));
    if (!delivery || delivery.tenant !== tenantOf(res)) notFound('webhook delivery', req);
    res.json(deliveryView(delivery, await deps.log.attempts(delivery.id)));
  });

  router.post('/v1/webhook-deliveries/:id/replay', ...guard, async (req, res) => {
    const delivery = await deps.dispatcher.replay(tenantOf(res), String(req.params.id), principalOf(res));
    res.status(202).json(deliveryView(delivery, await deps.log.attempts(delivery.id)));
  });

  return router;
}

/** Never the secrets, only when each was made and until when it signs. */
function endpointView(endpoint: WebhookEndpoint) {
  return {
    id: endpoint.id,
    url: endpoint.url,
    eventTypes: endpoint.eventTypes,
    description: endpoint.description,
    enabled: endpoint.isEnabled,
    ...(endpoint.disabledAt
      ? { disabledAt: endpoint.disabledAt, disabledReason: endpoint.disabledReason }
      : {}),
    health: endpoint.health,
    secrets: endpoint.secrets.map(({ createdAt, expiresAt }) => ({ createdAt, expiresAt })),
    createdAt: endpoint.createdAt,
    updatedAt: endpoint.updatedAt,
  };
}

function deliveryView(delivery: DeliveryRecord, attempts: readonly AttemptRecord[]) {
  const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());
  const { tenant: _tenant, createdAt, updatedAt, lastAttemptAt, nextAttemptAt, ...rest } = delivery;
  return {
    ...rest,
    createdAt: iso(createdAt),
    updatedAt: iso(updatedAt),
    lastAttemptAt: iso(lastAttemptAt),
    nextAttemptAt: iso(nextAttemptAt),
    attempts: attempts.map(({ at, ...attempt }) => ({ ...attempt, at: iso(at) })),
  };
}

function notFound(what: string, req: Request): never {
  throw new ClipmodError('not_found', `no ${what} ${String(req.params.id)}`);
}
