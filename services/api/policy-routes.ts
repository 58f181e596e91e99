import express, { type Request, type RequestHandler, type Router } from 'express';
import { ClipmodError } from '../../shared/errors/index.ts';
import { checkPolicyId, type PolicyStore, validatePolicy } from '../../shared/policy/index.ts';
import { principalOf } from './auth/index.ts';

// Policy administration: PUT writes a new immutable version, GET reads the live one (or any version
// by number), DELETE hides it. Every route acts for the caller's own tenant only.

export type PolicyRouterDeps = {
  store: PolicyStore;
  /** Runs before every policy route: authentication and the admin scope check. */
  authorize: readonly RequestHandler[];
  /** The model tokenizer's count, start and end tokens included; unset skips the 77-token check. */
  countTokens?: (text: string) => number;
};

export function policyRouter(deps: PolicyRouterDeps): Router {
  const router = express.Router();
  const { store } = deps;
  // Per route, not router.use(): this router is mounted at the root beside others and must not
  // authorize their requests.
  const guard: RequestHandler[] = [...deps.authorize, requireAdmin];
  const json = express.json({ limit: '256kb' });

  router.put('/v1/policies/:id', ...guard, json, async (req, res) => {
    const id = policyIdOf(req);
    if (req.body === undefined) {
      throw new ClipmodError(
        'bad_request',
        'send the policy document as JSON (Content-Type: application/json)',
      );
    }
    const document = validatePolicy(
      req.body,
      deps.countTokens === undefined ? {} : { countTokens: deps.countTokens },
    );
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
    if (policy === undefined) throw notFound(id, version);
    res.json(policy);
  });

  router.get('/v1/policies/:id/versions', ...guard, async (req, res) => {
    const id = policyIdOf(req);
    const history = await store.versions(principalOf(res).tenant, id);
    if (history === undefined) throw notFound(id, undefined);
    res.json({ id, liveVersion: history.liveVersion ?? null, data: history.versions });
  });

  router.delete('/v1/policies/:id', ...guard, async (req, res) => {
    const id = policyIdOf(req);
    if ((await store.delete(principalOf(res).tenant, id)) === undefined) throw notFound(id, undefined);
    res.status(204).end();
  });

  return router;
}

/** Fails closed should the injected chain ever be wired without a scope check. */
const requireAdmin: RequestHandler = (_req, res, next) => {
  if (!principalOf(res).scopes.includes('admin')) {
    throw new ClipmodError('forbidden', 'policy administration needs the "admin" scope', {
      details: { requiredScope: 'admin' },
    });
  }
  next();
};

function policyIdOf(req: Request): string {
  const raw: unknown = req.params.id;
  return checkPolicyId(typeof raw === 'string' ? raw : '');
}

function versionQuery(req: Request): number | undefined {
  const raw = req.query.version;
  if (raw === undefined) return undefined;
  const version = typeof raw === 'string' && /^[1-9][0-9]{0,8}$/.test(raw) ? Number(raw) : undefined;
  if (version === undefined) {
    throw new ClipmodError('bad_request', 'version must be a positive integer', {
      details: { errors: [{ path: 'version', message: 'must be a positive integer' }] },
    });
  }
  return version;
}

function notFound(id: string, version: number | undefined): ClipmodError {
  const what = version === undefined ? `policy "${id}"` : `version ${version} of policy "${id}"`;
  return new ClipmodError('not_found', `no ${what}`, { details: { id } });
}
