import express, { type Request, type RequestHandler, type Router } from 'express';
import {
  type AdminAuditEvent,
  type AdminAuditLog,
  type AdminAuditResource,
  type AuditPage,
  adminAuditResources,
  maxAuditPageSize,
  mergeAuditPages,
} from '../../shared/audit/index.ts';
import { ClipmodError } from '../../shared/errors/index.ts';
import type { PolicyAuditAction, PolicyAuditEvent, PolicyStore } from '../../shared/policy/index.ts';
import { principalOf } from './auth/index.ts';
import { pageQuery, requireAdmin } from './policy-route-params.ts';

// GET /v1/audit: the caller's tenant's whole audit log in one view, newest first — API keys, webhook
// endpoints and deliveries, tenant settings (the admin log) merged with policy changes (the policy log,
// each event shown as `policy.<action>`). `?resource=` keeps one kind; `?limit=` and `?before=` page
// exactly as /v1/policy-audit does.

export type AuditRouterDeps = {
  audit: AdminAuditLog;
  policies: PolicyStore;
  /** Runs before the route: authentication (the admin scope is checked here). */
  authorize: readonly RequestHandler[];
};

/** One event of the merged view. Policy events carry version, basedOn, rollbackOf and diff as changes. */
export type TenantAuditEvent = Omit<AdminAuditEvent, 'action'> & {
  action: AdminAuditEvent['action'] | `policy.${PolicyAuditAction}`;
};

const resourceKinds: readonly string[] = [...adminAuditResources, 'policy'];

export function auditRouter(deps: AuditRouterDeps): Router {
  const router = express.Router();
  // Per route, not router.use(): this router is mounted at the root beside others.
  router.get('/v1/audit', ...deps.authorize, requireAdmin, async (req, res) => {
    const { tenant } = principalOf(res);
    res.json(
      await tenantAudit(deps, tenant, { ...pageQuery(req, maxAuditPageSize), resource: resourceOf(req) }),
    );
  });
  return router;
}

type Query = { limit: number; before?: string; resource: AdminAuditResource | 'policy' | undefined };

async function tenantAudit(
  deps: AuditRouterDeps,
  tenant: string,
  query: Query,
): Promise<AuditPage<TenantAuditEvent>> {
  const { resource, ...page } = query;
  const policyPage = async () => {
    const read = await deps.policies.audit(tenant, page);
    return { data: read.data.map((event) => fromPolicyEvent(event, tenant)), next: read.next };
  };
  if (resource === 'policy') return policyPage();
  const adminPage = deps.audit.read(tenant, { ...page, resource });
  if (resource !== undefined) return adminPage;
  const pages: AuditPage<TenantAuditEvent>[] = await Promise.all([adminPage, policyPage()]);
  return mergeAuditPages(pages, page.limit);
}

function fromPolicyEvent(event: PolicyAuditEvent, tenant: string): TenantAuditEvent {
  const { id, at, actor, action, policy, ...changes } = event;
  return { id, at, actor, action: `policy.${action}`, tenant, resourceId: policy, changes };
}

function resourceOf(req: Request): Query['resource'] {
  const raw = req.query.resource;
  if (raw === undefined) return undefined;
  if (typeof raw === 'string' && resourceKinds.includes(raw)) return raw as Query['resource'];
  const allowed = resourceKinds.join(', ');
  throw new ClipmodError('bad_request', `resource must be one of ${allowed}`, {
    details: { errors: [{ path: 'resource', message: `must be one of ${allowed}` }] },
  });
}
