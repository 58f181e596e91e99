import express, { type RequestHandler, type Router } from 'express';
import { z } from 'zod';
import { type ImageLimits, probeImage } from '../../shared/clip/index.ts';
import { ClipmodError } from '../../shared/errors/index.ts';
import { newRequestId } from '../../shared/moderation/index.ts';
import type { PolicyStore, Verdict } from '../../shared/policy/index.ts';
import type { JobPayload } from '../../shared/queue/index.ts';
import { calibrateLabels } from '../../shared/retention/index.ts';
import { principalOf } from './auth/index.ts';
import { policyIdOf, policyNotFound, requireAdmin } from './policy-route-params.ts';

// POST /v1/policies/:id/calibrate — threshold calibration from labelled examples. Each example image is
// scored against the live version through the queue (the dry-run job: nothing is recorded), then the
// pure maths of shared/retention gives per label precision and recall at every threshold and the
// threshold proposed for the target precision. `clipmod calibrate --dir` uploads a folder here.

export const negativesLabel = 'negatives';
/** Examples per call; each costs one model call, and a calibration set of this size fits one request. */
export const maxCalibrationExamples = 500;

export type CalibrationRouterDeps = {
  policies: PolicyStore;
  authorize: readonly RequestHandler[];
  imageLimits: Partial<ImageLimits>;
  maxSyncWaitMs: number;
  run(payload: JobPayload<'policy.test'>, image: Buffer, waitMs: number): Promise<unknown>;
};

const requestSchema = z.strictObject({
  targetPrecision: z.number().gt(0).max(1).default(0.95),
  examples: z
    .array(
      z.strictObject({
        label: z.string().min(1).max(64),
        image: z.strictObject({ base64: z.string().min(1) }),
      }),
    )
    .min(1)
    .max(maxCalibrationExamples),
});

/** Scoring requests in flight at once: enough to fill the worker's micro-batches. */
const concurrency = 8;

export function calibrationRouter(deps: CalibrationRouterDeps): Router {
  const router = express.Router();
  const guard: RequestHandler[] = [...deps.authorize, requireAdmin];
  router.post('/v1/policies/:id/calibrate', ...guard, express.json({ limit: '64mb' }), async (req, res) => {
    const { tenant } = principalOf(res);
    const id = policyIdOf(req);
    const parsed = requestSchema.safeParse(req.body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new ClipmodError('bad_request', `${issue?.path.join('.') ?? 'body'}: ${issue?.message}`);
    }
    const policy = await deps.policies.get(tenant, id);
    if (policy === undefined) throw policyNotFound(id);
    const labels = policy.document.labels.map((label) => label.id);
    const known = new Set([...labels, negativesLabel]);
    const unknown = parsed.data.examples.find((example) => !known.has(example.label));
    if (unknown)
      throw new ClipmodError(
        'bad_request',
        `"${unknown.label}" is neither a label of ${id} nor "${negativesLabel}"`,
      );
    const source = { source: 'stored' as const, id, version: policy.version };
    const scoreOne = async ({ label, image }: { label: string; image: { base64: string } }) => {
      const bytes = Buffer.from(image.base64, 'base64');
      await probeImage(bytes, deps.imageLimits);
      const payload = { requestId: newRequestId(), tenant, policy: source };
      const { verdict } = (await deps.run(payload, bytes, deps.maxSyncWaitMs)) as { verdict: Verdict };
      return { filedUnder: label, scores: Object.fromEntries(verdict.labels.map((l) => [l.id, l.score])) };
    };
    const examples = await mapLimited(parsed.data.examples, concurrency, scoreOne);
    res.json({
      policy: { id, version: policy.version },
      targetPrecision: parsed.data.targetPrecision,
      thresholds: Object.fromEntries(policy.document.labels.map((label) => [label.id, label.threshold])),
      labels: calibrateLabels(labels, examples, parsed.data.targetPrecision),
    });
  });
  return router;
}

async function mapLimited<T, R>(
  items: readonly T[],
  limit: number,
  map: (item: T) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await map(items[index]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return results;
}
