import express, { type RequestHandler, type Router } from 'express';
import { z } from 'zod';
import { type ImageLimits, probeImage } from '../../shared/clip/index.ts';
import { ClipmodError } from '../../shared/errors/index.ts';
import { metadataSchema, newRequestId, publicModeration } from '../../shared/moderation/index.ts';
import { principalOf } from './auth/index.ts';
import { type IntakeOptions, readOptionalSubmission, readSubmission } from './intake/index.ts';
import type { ModerationService } from './moderation-service.ts';
import { annotateRequestLog, requestIdOf } from './request-context.ts';

export type ModerationRouterDeps = {
  service: ModerationService;
  guard: RequestHandler[];
  intake: IntakeOptions;
  imageLimits: Partial<ImageLimits>;
  maxSyncWaitMs: number;
};

const idempotencyKeySchema = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces');

/** `?wait=MS`: how long a request may hold for the result, capped by the deployment. */
function waitMsOf(query: unknown, maxMs: number, fallbackMs: number): number {
  const raw = (query as Record<string, unknown>).wait;
  if (raw === undefined) return fallbackMs;
  const value = Number(raw);
  if (typeof raw !== 'string' || !Number.isInteger(value) || value < 0) {
    throw new ClipmodError('bad_request', 'wait must be a whole number of milliseconds', {
      details: { field: 'wait' },
    });
  }
  return Math.min(value, maxMs);
}

function parseField<T>(schema: z.ZodType<T>, value: unknown, field: string): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    throw new ClipmodError('bad_request', `${field}: ${parsed.error.issues[0]?.message ?? 'invalid'}`, {
      details: { field },
    });
  }
  return parsed.data;
}

/** Labels as a JSON array or a comma-separated string, as the transformers pipeline's candidate_labels. */
const labelsSchema = z.preprocess(
  (value) =>
    typeof value === 'string'
      ? value
          .split(',')
          .map((label) => label.trim())
          .filter(Boolean)
      : value,
  z.array(z.string().min(1).max(300)).min(1).max(256),
);

export function moderationRouter(deps: ModerationRouterDeps): Router {
  const router = express.Router();
  const { service } = deps;

  router.post('/v1/moderations', ...deps.guard, async (req, res) => {
    const { tenant } = principalOf(res);
    const submission = await readSubmission(req, deps.intake);
    const info = await probeImage(submission.image, deps.imageLimits);
    const header = req.get('idempotency-key');
    const idempotencyKey =
      header === undefined ? undefined : parseField(idempotencyKeySchema, header, 'Idempotency-Key');
    const waitMs = waitMsOf(req.query, deps.maxSyncWaitMs, 0);
    const requestId = requestIdOf(res);
    const { id, isNew } = await service.submit({
      tenant,
      image: submission.image,
      info,
      policyId: parseField(z.string().min(1), submission.fields.policy ?? 'default', 'policy'),
      metadata: parseField(metadataSchema, submission.fields.metadata ?? {}, 'metadata'),
      ...(idempotencyKey === undefined ? {} : { idempotencyKey }),
      ...(requestId === undefined ? {} : { requestId }),
    });
    annotateRequestLog(res, { moderationId: id, isIdempotentReplay: !isNew });
    const record = await service.waitForSubmitted(tenant, id, waitMs);
    res.setHeader('location', `/v1/moderations/${id}`);
    if (!isNew) res.setHeader('idempotent-replayed', 'true');
    if (record.status === 'completed' || record.status === 'failed')
      res.status(200).json(publicModeration(record));
    else res.status(202).json({ id, status: record.status });
  });

  router.get('/v1/moderations/:id', ...deps.guard, async (req, res) => {
    const { tenant } = principalOf(res);
    const waitMs = waitMsOf(req.query, deps.maxSyncWaitMs, 0);
    res.json(publicModeration(await service.waitFor(tenant, String(req.params.id), waitMs)));
  });

  router.post('/v1/classify', ...deps.guard, async (req, res) => {
    const { tenant } = principalOf(res);
    const submission = await readSubmission(req, deps.intake);
    await probeImage(submission.image, deps.imageLimits);
    const labels = parseField(labelsSchema, submission.fields.labels, 'labels');
    const templates =
      submission.fields.templates === undefined
        ? undefined
        : parseField(
            z.array(z.string().includes('{}')).min(1).max(100),
            submission.fields.templates,
            'templates',
          );
    const payload = { requestId: newRequestId(), tenant, labels, ...(templates ? { templates } : {}) };
    res.json(
      await service.run(
        'classify.run',
        payload,
        submission.image,
        waitMsOf(req.query, deps.maxSyncWaitMs, deps.maxSyncWaitMs),
      ),
    );
  });

  router.post('/v1/embeddings', ...deps.guard, async (req, res) => {
    const { tenant } = principalOf(res);
    // Up to 256 texts of 2,000 characters: more JSON than the 64 KB default for non-image fields.
    const submission = await readOptionalSubmission(req, { ...deps.intake, maxFieldsBytes: 1_048_576 });
    const waitMs = waitMsOf(req.query, deps.maxSyncWaitMs, deps.maxSyncWaitMs);
    const requestId = newRequestId();
    if (submission.image) {
      await probeImage(submission.image, deps.imageLimits);
      res.json(
        await service.run('embedding.run', { kind: 'image', requestId, tenant }, submission.image, waitMs),
      );
      return;
    }
    const text = submission.fields.text ?? submission.fields.input;
    const texts = parseField(
      z.union([z.string().max(2_000), z.array(z.string().max(2_000)).min(1).max(256)]),
      text,
      'text',
    );
    const payload = {
      kind: 'text' as const,
      requestId,
      tenant,
      texts: typeof texts === 'string' ? [texts] : texts,
    };
    res.json(await service.run('embedding.run', payload, undefined, waitMs));
  });

  return router;
}
