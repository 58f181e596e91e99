import express, { type RequestHandler, type Router } from 'express';
import { maxAuditPageSize } from '../../shared/audit/index.ts';
import { ClipmodError } from '../../shared/errors/index.ts';
import { type PolicyStore, type ShadowStats, validatePolicy } from '../../shared/policy/index.ts';
import { principalOf } from './auth/index.ts';
import { addPolicyDryRunRoute, type PolicyDryRunDeps } from './policy-dry-run-routes.ts';
import {
  jsonObjectBody,
  pageQuery,
  parseVersion,
  policyIdOf,
  policyNotFound,
  requireAdmin,
  versionQuery,
} from './policy-route-params.ts';
import { addPolicyShadowRoutes } from './policy-shadow-routes.ts';

// Policy administration: PUT writes a new immutable version (with its author, time and diff against
// the version it replaced), GET reads the live one (or any version by number), DELETE hides it,
// rollback writes an old version again as the new live one, and the audit log lists every change.
// Shadow mode and the dry run live in their own files. Every route acts for the caller's own tenant.

export type PolicyRouterDeps = {
  store: PolicyStore;
  /** Runs before every policy route: authentication and the admin scope check. */
  authorize: readonly RequestHandler[];
  /** The model tokenizer's count, start and end tokens included; unset skips the 77-token check. */
  countTokens?: (text: string) => number;
  /** Enables the shadow-mode routes. */
  shadowStats?: ShadowStats;
  /** Enables POST /v1/policies/:id/test (it needs the queue and the image intake). */
  dryRun?: PolicyDryRunDeps;
};

export function policyRouter(deps: PolicyRouterDeps): Router {
  const router = express.Router();
  const { store } = deps;
  // Per route, not router.use(): this router is mounted at the root beside others and must not
  // authorize their requests.
  const guard: RequestHandler[] = [...deps.authorize, requireAdmin];
  const json = express.json({ limit: '256kb' });
  const validate = (input: unknown) =>
    validatePolicy(input, deps.countTokens === undefined ? {} : { countTokens: deps.countTokens });

  router.put('/v1/policies/:id', ...guard, json, async (req, res) => {
    const id = policyIdOf(req);
    if (req.body === undefined) {
      throw new ClipmodError(
        'bad_request',
        'send the policy document as JSON (Content-Type: application/json)',
      );
    }
    const document = validate(req.body);
    const { tenant, keyId } = principalOf(res);
    const { policy, isCreated } = await store.put(tenant, id, document, keyId);
    if (isCreated) res.status(201).location(`/v1/policies/${id}`);
    res.json(policy);
  });

  router.get('/v1/policies', ...guard, async (_req, res) => {
    res.json({ data: await store.list(principalOf(res).tenant) });
  });

  router.get('/v1/policies/:id', ...guard, async (req, res) => {
    const id = policyIdOf(req);
    const version = versionQuery(req);
    const policy = await store.get(principalOf(res).tenant, id, version);
    if (policy === undefined) throw policyNotFound(id, version);
    res.json(policy);
  });

  router.get('/v1/policies/:id/versions', ...guard, async (req, res) => {
    const id = policyIdOf(req);
    const history = await store.versions(principalOf(res).tenant, id);
    if (history === undefined) throw policyNotFound(id);
    const { liveVersion, shadowVersion, versions } = history;
    res.json({ id, liveVersion: liveVersion ?? null, shadowVersion: shadowVersion ?? null, data: versions });
  });

  router.post('/v1/policies/:id/rollback', ...guard, json, async (req, res) => {
    const id = policyIdOf(req);
    const version = parseVersion(jsonObjectBody(req, '{"version": N}').version, 'version');
    const { tenant, keyId } = principalOf(res);
    const result = await store.rollback(tenant, id, version, keyId);
    if (result === undefined) throw policyNotFound(id, version);
    if (result.isCreated) res.status(201).location(`/v1/policies/${id}`);
    res.json(result.policy);
  });

  router.delete('/v1/policies/:id', ...guard, async (req, res) => {
    const id = policyIdOf(req);
    const { tenant, keyId } = principalOf(res);
    if ((await store.delete(tenant, id, keyId)) === undefined) throw policyNotFound(id);
    res.status(204).end();
  });

  router.get('/v1/policies/:id/audit', ...guard, async (req, res) => {
    const policyId = policyIdOf(req);
    res.json(await store.audit(principalOf(res).tenant, { policyId, ...pageQuery(req, maxAuditPageSize) }));
  });

  router.get('/v1/policy-audit', ...guard, async (req, res) => {
    res.json(await store.audit(principalOf(res).tenant, pageQuery(req, maxAuditPageSize)));
  });

  if (deps.shadowStats !== undefined)
    addPolicyShadowRoutes(router, guard, { store, shadowStats: deps.shadowStats, json, validate });
  if (deps.dryRun !== undefined) addPolicyDryRunRoute(router, guard, { ...deps.dryRun, store, validate });
  return router;
}
