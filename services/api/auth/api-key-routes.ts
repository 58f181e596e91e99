import express, { type Router } from 'express';
import { z } from 'zod';
import { ClipmodError } from '../../../shared/errors/index.ts';
import { parseOr400 } from '../parse-input.ts';
import { type ApiKeyRecord, type ApiKeyStore, defaultTenant, scopes, tenantSchema } from './api-key-store.ts';
import { authenticate, principalOf, requireScope } from './authenticate.ts';

// Key administration (admin scope). An admin manages its own tenant's keys; admins of tenant
// `default` (the bootstrap key among them) operate the deployment and may act for any tenant.

const createKeyBody = z
  .object({
    name: z.string().trim().min(1).max(100),
    scopes: z.array(z.enum(scopes)).min(1),
    tenant: tenantSchema.optional(),
  })
  .strict();

const listKeysQuery = z.object({ tenant: tenantSchema.optional() });

export type ApiKeyRouterDeps = { store: ApiKeyStore };

export function apiKeyRouter(deps: ApiKeyRouterDeps): Router {
  const router = express.Router();
  // Scoped to the path: this router is mounted at the root beside others and must not
  // authenticate their requests (or turn their 404s into 401s).
  router.use('/v1/api-keys', authenticate(deps.store), requireScope('admin'));

  router.post('/v1/api-keys', express.json({ limit: '16kb' }), async (req, res) => {
    const body = parseOr400(createKeyBody, req.body);
    const principal = principalOf(res);
    const tenant = tenantInScope(principal.tenant, body.tenant);
    const { record, key } = await deps.store.create(
      { tenant, name: body.name, scopes: body.scopes },
      principal,
    );
    res
      .status(201)
      .location(`/v1/api-keys/${record.id}`)
      .json({ ...publicView(record), key });
  });

  router.get('/v1/api-keys', async (req, res) => {
    const query = parseOr400(listKeysQuery, req.query);
    const tenant = tenantInScope(principalOf(res).tenant, query.tenant);
    const records = await deps.store.list(tenant);
    res.json({ data: records.map(publicView) });
  });

  router.delete('/v1/api-keys/:id', async (req, res) => {
    const principal = principalOf(res);
    const restrictTo = principal.tenant === defaultTenant ? undefined : principal.tenant;
    // Another tenant's key answers 404 like a missing one, so ids reveal nothing across tenants.
    if (!(await deps.store.remove(req.params.id, restrictTo, principal))) {
      throw new ClipmodError('not_found', `no API key ${req.params.id}`);
    }
    res.status(204).end();
  });

  return router;
}

/** The tenant a request acts for: its own unless a `default` admin names another. */
function tenantInScope(callerTenant: string, requested: string | undefined): string {
  if (requested === undefined || requested === callerTenant) return callerTenant;
  if (callerTenant === defaultTenant) return requested;
  throw new ClipmodError('forbidden', `this API key may not act for tenant "${requested}"`, {
    details: { tenant: requested },
  });
}

function publicView(record: ApiKeyRecord) {
  return {
    id: record.id,
    tenant: record.tenant,
    scopes: record.scopes,
    name: record.name,
    createdAt: record.createdAt,
  };
}
