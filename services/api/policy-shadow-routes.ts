import type { RequestHandler, Router } from 'express';
import { ClipmodError } from '../../shared/errors/index.ts';
import type { PolicyDocument, PolicyStore, ShadowStats, StoredPolicy } from '../../shared/policy/index.ts';
import { principalOf } from './auth/index.ts';
import {
  jsonObjectBody,
  parseVersion,
  policyIdOf,
  policyNotFound,
  validateDraft,
  versionQuery,
} from './policy-route-params.ts';

// Shadow mode: a candidate version runs beside the live one on live traffic. The API records the
// shadow version on each moderation at submit; the worker scores the same image against both, stores
// the candidate's verdict on the record (never acted on) and tallies agreement and flips per label.
//   PUT    /v1/policies/:id/shadow           {"version": N} or {"policy": {…draft}} (saved as a candidate version)
//   DELETE /v1/policies/:id/shadow           stops it (the tally stays readable)
//   GET    /v1/policies/:id/shadow/summary   count, agreement rate, action pairs, flips by label

export type PolicyShadowDeps = {
  store: PolicyStore;
  shadowStats: ShadowStats;
  json: RequestHandler;
  validate(input: unknown): PolicyDocument;
};

export function addPolicyShadowRoutes(router: Router, guard: RequestHandler[], deps: PolicyShadowDeps): void {
  const { store, shadowStats } = deps;

  router.put('/v1/policies/:id/shadow', ...guard, deps.json, async (req, res) => {
    const id = policyIdOf(req);
    const body = jsonObjectBody(req, '{"version": N} or {"policy": {…}}');
    const { tenant, keyId } = principalOf(res);
    const live = await store.get(tenant, id);
    if (live === undefined) throw policyNotFound(id);
    let candidate: StoredPolicy | undefined;
    if (body.policy !== undefined) {
      if (body.version !== undefined) throw new ClipmodError('bad_request', 'send either version or policy');
      const document = validateDraft(deps.validate, body.policy);
      candidate = (await store.put(tenant, id, document, keyId, { kind: 'candidate' })).policy;
    }
    const version = candidate?.version ?? parseVersion(body.version, 'version');
    const previous = await store.setShadow(tenant, id, version, keyId);
    res.json({
      id,
      liveVersion: live.version,
      shadowVersion: version,
      previousShadowVersion: previous ?? null,
      ...(candidate === undefined ? {} : { candidate }),
    });
  });

  router.delete('/v1/policies/:id/shadow', ...guard, async (req, res) => {
    const id = policyIdOf(req);
    const { tenant, keyId } = principalOf(res);
    if ((await store.clearShadow(tenant, id, keyId)) === undefined) {
      throw new ClipmodError('not_found', `policy "${id}" runs no shadow version`, { details: { id } });
    }
    res.status(204).end();
  });

  router.get('/v1/policies/:id/shadow/summary', ...guard, async (req, res) => {
    const id = policyIdOf(req);
    const { tenant } = principalOf(res);
    const live = await store.get(tenant, id);
    const version = versionQuery(req) ?? live?.shadowVersion;
    if (version === undefined) {
      throw new ClipmodError(
        'not_found',
        `policy "${id}" runs no shadow version; ask for one with ?version=N`,
        {
          details: { id },
        },
      );
    }
    const summary = await shadowStats.summary(tenant, id, version);
    res.json({
      id,
      liveVersion: live?.version ?? null,
      isRunning: live?.shadowVersion === version,
      ...summary,
    });
  });
}
