import express, { type Request, type RequestHandler, type Router } from 'express';
import { type ImageLimits, probeImage } from '../../shared/clip/index.ts';
import { ClipmodError } from '../../shared/errors/index.ts';
import { newRequestId } from '../../shared/moderation/index.ts';
import type { PolicyStore } from '../../shared/policy/index.ts';
import type { JobPayload } from '../../shared/queue/index.ts';
import {
  type KnownBadBank,
  type RetainedEmbeddings,
  searchMatrix,
  type TenantSettingsStore,
  TopK,
} from '../../shared/retention/index.ts';
import { principalOf } from './auth/index.ts';
import { type IntakeOptions, readSubmission } from './intake/index.ts';
import { policyIdOf, policyNotFound, requireAdmin } from './policy-route-params.ts';

// Tenant settings (retention opt-in, bank distance), the known-bad bank and search over retained
// embeddings. Images and query texts are embedded by the worker through the queue (`embedding.run`):
// the API never loads the model. Search itself is exact brute force over the tenant's vectors, read
// from Redis chunk by chunk, so memory stays bounded by the chunk and k, not by the tenant's size.

export type BeyondRouterDeps = {
  settings: TenantSettingsStore;
  bank: KnownBadBank;
  retained: RetainedEmbeddings;
  policies: PolicyStore;
  authorize: readonly RequestHandler[];
  intake: IntakeOptions;
  imageLimits: Partial<ImageLimits>;
  maxSyncWaitMs: number;
  /** Enqueues `embedding.run` (image bytes stored under the request id) and waits for the result. */
  embed(payload: JobPayload<'embedding.run'>, image: Buffer | undefined, waitMs: number): Promise<unknown>;
};

type EmbeddingResult = { model: string; dim: number; embeddings: number[][] };

export function beyondRouter(deps: BeyondRouterDeps): Router {
  const router = express.Router();
  const guard: RequestHandler[] = [...deps.authorize, requireAdmin];
  const json = express.json({ limit: '16kb' });

  router.get('/v1/tenant-settings', ...guard, async (_req, res) => {
    res.json(await deps.settings.get(principalOf(res).tenant));
  });

  router.put('/v1/tenant-settings', ...guard, json, async (req, res) => {
    const principal = principalOf(res);
    res.json(await deps.settings.put(principal.tenant, req.body, principal));
  });

  router.get('/v1/policies/:id/labels/:label/bank', ...guard, async (req, res) => {
    const { tenant } = principalOf(res);
    const label = await labelOf(deps, tenant, req);
    res.json({ data: await deps.bank.list(tenant, policyIdOf(req), label) });
  });

  router.post('/v1/policies/:id/labels/:label/bank', ...guard, async (req, res) => {
    const { tenant } = principalOf(res);
    const label = await labelOf(deps, tenant, req);
    const submission = await readSubmission(req, deps.intake);
    const embedded = await embedImage(deps, tenant, submission.image);
    const note = submission.fields.note;
    const entry = await deps.bank.add(tenant, {
      policyId: policyIdOf(req),
      label,
      model: embedded.model,
      embedding: embedded.vector,
      ...(typeof note === 'string' && note.length > 0 ? { note: note.slice(0, 200) } : {}),
    });
    res.status(201).json(entry);
  });

  router.delete('/v1/policies/:id/bank/:entryId', ...guard, async (req, res) => {
    const removed = await deps.bank.remove(
      principalOf(res).tenant,
      policyIdOf(req),
      String(req.params.entryId),
    );
    if (!removed) throw new ClipmodError('not_found', `no bank entry ${String(req.params.entryId)}`);
    res.status(204).end();
  });

  router.get('/v1/search', ...guard, async (req, res) => {
    const { tenant } = principalOf(res);
    const text = req.query.q;
    if (typeof text !== 'string' || text.trim() === '' || text.length > 2_000) {
      throw new ClipmodError('bad_request', 'q must be a text of 1 to 2,000 characters', {
        details: { field: 'q' },
      });
    }
    const payload = { kind: 'text' as const, requestId: newRequestId(), tenant, texts: [text] };
    const result = (await deps.embed(payload, undefined, deps.maxSyncWaitMs)) as EmbeddingResult;
    res.json(await search(deps, tenant, unit(result.embeddings[0] ?? []), modelIdOf(result.model), kOf(req)));
  });

  router.post('/v1/search', ...guard, async (req, res) => {
    const { tenant } = principalOf(res);
    const submission = await readSubmission(req, deps.intake);
    const embedded = await embedImage(deps, tenant, submission.image);
    res.json(await search(deps, tenant, embedded.vector, embedded.model, kOf(req)));
  });

  return router;
}

async function embedImage(deps: BeyondRouterDeps, tenant: string, image: Buffer) {
  await probeImage(image, deps.imageLimits);
  const payload = { kind: 'image' as const, requestId: newRequestId(), tenant };
  const result = (await deps.embed(payload, image, deps.maxSyncWaitMs)) as EmbeddingResult;
  return { model: modelIdOf(result.model), vector: unit(result.embeddings[0] ?? []) };
}

async function search(deps: BeyondRouterDeps, tenant: string, query: Float32Array, model: string, k: number) {
  const top = new TopK(k);
  await deps.retained.scan(tenant, ({ ids, vectors }) => {
    for (const [index, vector] of vectors.entries()) {
      if (vector.length === query.length) searchMatrix(query, vector, () => ids[index]!, top);
    }
  });
  const hits = top.hits();
  const metas = await deps.retained.meta(
    tenant,
    hits.map((hit) => hit.id),
  );
  // Vectors of another model share no space with the query: their scores would mean nothing.
  const data = hits.flatMap((hit, index) => {
    const meta = metas[index];
    if (meta === undefined || meta.model !== model) return [];
    const { summary, retainedAt } = meta;
    return [{ moderationId: hit.id, score: Math.round(hit.score * 1e6) / 1e6, verdict: summary, retainedAt }];
  });
  return { model, k, data };
}

async function labelOf(deps: BeyondRouterDeps, tenant: string, req: Request): Promise<string> {
  const id = policyIdOf(req);
  const policy = await deps.policies.get(tenant, id);
  if (policy === undefined) throw policyNotFound(id);
  const label = String(req.params.label);
  if (!policy.document.labels.some((candidate) => candidate.id === label)) {
    throw new ClipmodError('not_found', `policy ${id} has no label "${label}"`, {
      details: { field: 'label' },
    });
  }
  return label;
}

function kOf(req: Request): number {
  const raw = req.query.k ?? '10';
  if (typeof raw !== 'string' || !/^[0-9]{1,4}$/.test(raw) || Number(raw) < 1 || Number(raw) > 1_000) {
    throw new ClipmodError('bad_request', 'k must be a whole number from 1 to 1000', {
      details: { field: 'k' },
    });
  }
  return Number(raw);
}

/** The worker's model name carries a note for test models ("id (TEST MODEL…)"): the id alone names the space. */
function modelIdOf(name: string): string {
  return name.replace(/ \(.*\)$/, '');
}

function unit(values: readonly number[]): Float32Array {
  const vector = Float32Array.from(values);
  const norm = Math.hypot(...vector) || 1;
  for (let index = 0; index < vector.length; index += 1) vector[index]! /= norm;
  return vector;
}
