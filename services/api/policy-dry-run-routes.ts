import type { Request, RequestHandler, Router } from 'express';
import { type ImageLimits, probeImage } from '../../shared/clip/index.ts';
import { ClipmodError } from '../../shared/errors/index.ts';
import { newRequestId } from '../../shared/moderation/index.ts';
import type { PolicyDocument, PolicyStore, Verdict } from '../../shared/policy/index.ts';
import type { JobPayload } from '../../shared/queue/index.ts';
import { principalOf } from './auth/index.ts';
import { type IntakeOptions, readSubmission } from './intake/index.ts';
import { parseVersion, policyIdOf, policyNotFound, validateDraft } from './policy-route-params.ts';

// POST /v1/policies/:id/test — the dry run: scores one image (any intake a moderation accepts) against
// the live version, a stored one (`?version=N` or a `version` field) or an unsaved draft (a `policy`
// member of the JSON body, or a multipart field holding its JSON), and answers the per-label scores and
// evidence. Nothing is recorded: no moderation, no webhook, no shadow tally; the image bytes wait in
// Redis only until the worker has read them. The API never loads the model: the job goes through the
// queue like any other model work, and the request waits for it (`?wait=MS`, capped by the deployment).

export type PolicyDryRunDeps = {
  intake: IntakeOptions;
  imageLimits: Partial<ImageLimits>;
  maxSyncWaitMs: number;
  /** Stores the image under the payload's requestId, enqueues `policy.test` and waits for its result. */
  run(payload: JobPayload<'policy.test'>, image: Buffer, waitMs: number): Promise<unknown>;
  /** The per-key limiter: a dry run costs a model call, like a moderation. */
  rateLimit?: RequestHandler;
};

type DryRunRouteDeps = PolicyDryRunDeps & { store: PolicyStore; validate(input: unknown): PolicyDocument };

type PolicySource = {
  payload: JobPayload<'policy.test'>['policy'];
  described: { id: string; version: number } | { id: string; draft: true };
};

export function addPolicyDryRunRoute(router: Router, guard: RequestHandler[], deps: DryRunRouteDeps): void {
  const limiter = deps.rateLimit === undefined ? [] : [deps.rateLimit];
  router.post('/v1/policies/:id/test', ...guard, ...limiter, async (req, res) => {
    const id = policyIdOf(req);
    const { tenant } = principalOf(res);
    const waitMs = waitQuery(req, deps.maxSyncWaitMs);
    const submission = await readSubmission(req, deps.intake);
    await probeImage(submission.image, deps.imageLimits);
    const source = await policySource(
      deps,
      tenant,
      id,
      req.query.version ?? submission.fields.version,
      submission.fields.policy,
    );
    const payload = { requestId: newRequestId(), tenant, policy: source.payload };
    const result = (await deps.run(payload, submission.image, waitMs)) as { model: string; verdict: Verdict };
    res.json({ policy: source.described, model: result.model, verdict: result.verdict });
  });
}

async function policySource(
  deps: DryRunRouteDeps,
  tenant: string,
  id: string,
  rawVersion: unknown,
  draft: unknown,
): Promise<PolicySource> {
  if (draft !== undefined) {
    if (rawVersion !== undefined)
      throw new ClipmodError('bad_request', 'send either a version or a draft policy');
    const document = validateDraft(deps.validate, draft);
    return {
      payload: { source: 'draft', document: document as unknown as Record<string, unknown> },
      described: { id, draft: true },
    };
  }
  const version = rawVersion === undefined ? undefined : parseVersion(rawVersion, 'version');
  const stored = await deps.store.get(tenant, id, version);
  if (stored === undefined) throw policyNotFound(id, version);
  return {
    payload: { source: 'stored', id, version: stored.version },
    described: { id, version: stored.version },
  };
}

/** `?wait=MS`, capped by the deployment; the cap when absent (a dry run is synchronous). */
function waitQuery(req: Request, maxMs: number): number {
  const raw = req.query.wait;
  if (raw === undefined) return maxMs;
  if (typeof raw !== 'string' || !/^[0-9]{1,9}$/.test(raw)) {
    throw new ClipmodError('bad_request', 'wait must be a whole number of milliseconds', {
      details: { field: 'wait' },
    });
  }
  return Math.min(Number(raw), maxMs);
}
