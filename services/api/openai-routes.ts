import express, { type ErrorRequestHandler, type Request, type Response, type Router } from 'express';
import { z } from 'zod';
import { type ImageInfo, probeImage } from '../../shared/clip/index.ts';
import { ClipmodError, type ErrorCode, errorCatalog, isClipmodError } from '../../shared/errors/index.ts';
import { type ModerationRecord, newRequestId } from '../../shared/moderation/index.ts';
import {
  formatFieldPath,
  type PolicyStore,
  policyIdPattern,
  type StoredPolicy,
  type Verdict,
} from '../../shared/policy/index.ts';
import { principalOf } from './auth/index.ts';
import { readImageReference, readOptionalSubmission } from './intake/index.ts';
import type { ModerationRouterDeps } from './moderation-routes.ts';
import {
  type OpenAiModerationResult,
  openAiErrorBody,
  resultFromVerdicts,
  unscoredResult,
} from './openai-moderation-format.ts';
import { requestIdOf } from './request-context.ts';

// POST /openai/v1/moderations — OpenAI's moderation API, so an OpenAI SDK client changes only its base
// URL (`baseURL: http://host/openai/v1`) to get clipmod's image moderation.
//
// - Auth, `moderate` scope and rate limit: the same guard as POST /v1/moderations.
// - `model` picks the tenant's policy of that id when one exists; anything else — OpenAI's names
//   (`omni-moderation-latest`, `omni-moderation-2024-09-26`, `text-moderation-latest`), an unknown
//   name, or no model — picks the tenant's `default` policy. The response echoes the requested
//   `model` (`omni-moderation-latest` when absent): SDKs may check it.
// - Categories are the policy's label ids: `categories[id]` = triggered, `category_scores[id]` = score,
//   `category_applied_input_types[id]` = `['image']` when an image was scored, else `[]`.
// - `input` as an array of parts (`{type:'text', text}`, `{type:'image_url', image_url:{url}}`): one
//   result for the whole input (at most 64 parts). Each image is moderated (in parallel, at most 8); per
//   label the highest score and any-triggered across images are reported; `flagged` when any image's
//   verdict is flagged. Data URLs (base64) are decoded here under the image byte limit, the whole JSON
//   body under the request body limit; http(s) URLs are fetched by the same SSRF-safe client as the
//   native route. Every image becomes a normal moderation (metadata `{"via":"openai"}`, webhooks
//   included); header `x-clipmod-moderation-ids` lists their ids for GET /v1/moderations/:id.
// - `input` as a string or an array of strings: clipmod moderates images, not text. One result per
//   string (at most 2,048), unflagged, every label false with score 0 and `[]` input types (no labels
//   when the tenant has no policy; images then get 404 `not_found`, param `model`). Text never fails
//   a request (SDK pipelines send mixed traffic); the header
//   `x-clipmod-warning: text inputs are not moderated` says so, also for text parts beside images.
// - Verdicts are awaited up to CLIPMOD_MAX_SYNC_WAIT_MS; past it 504 `timeout` (the moderations go on).
// - Errors on this route use OpenAI's envelope `{error: {message, type, param, code}}` with the HTTP
//   status of clipmod's catalog, `type` `invalid_request_error` (4xx) or `server_error` (5xx), `param`
//   the offending field (`input[1].image_url.url`) or null, and `code` = clipmod's stable code
//   (malformed body: 400 `bad_request`; missing key: 401 `unauthorized`). Unexpected failures go to
//   the app's problem handler (logged, application/problem+json 500/503).

export type OpenAiRouterDeps = ModerationRouterDeps & { policies: Pick<PolicyStore, 'get'> };

const DEFAULT_POLICY_ID = 'default';
const DEFAULT_MODEL = 'omni-moderation-latest';
const TEXT_WARNING = 'text inputs are not moderated';
/** Each image may be up to the image byte limit once fetched: bounds one request's memory. */
const MAX_IMAGES = 8;
const MAX_PARTS = 64;
const MAX_TEXTS = 2_048;

const partSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('text'), text: z.string() }),
  z.object({ type: z.literal('image_url'), image_url: z.object({ url: z.string().min(1) }) }),
]);

type ImageRef = { url: string; field: string };
type OpenAiInput =
  | { kind: 'texts'; texts: string[] }
  | { kind: 'parts'; images: ImageRef[]; hasText: boolean };
type OpenAiRequest = { model: string | undefined; input: OpenAiInput };

function badRequest(message: string, field: string): ClipmodError {
  return new ClipmodError('bad_request', message, { details: { field } });
}

function parseInput(input: unknown): OpenAiInput {
  if (typeof input === 'string') return { kind: 'texts', texts: [input] };
  if (!Array.isArray(input) || input.length === 0) {
    throw badRequest(
      'input must be a string, a non-empty array of strings, or a non-empty array of {"type": "text" | "image_url"} parts.',
      'input',
    );
  }
  if (input.every((item) => typeof item === 'string')) {
    if (input.length > MAX_TEXTS) throw badRequest(`input may hold at most ${MAX_TEXTS} strings.`, 'input');
    return { kind: 'texts', texts: input };
  }
  const parsed = z.array(partSchema).max(MAX_PARTS).safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = formatFieldPath(['input', ...(issue?.path ?? [])]);
    throw badRequest(`${field}: ${issue?.message ?? 'invalid'}`, field);
  }
  const images = parsed.data.flatMap((part, index) =>
    part.type === 'image_url' ? [{ url: part.image_url.url, field: `input[${index}].image_url.url` }] : [],
  );
  if (images.length > MAX_IMAGES) throw badRequest(`input may hold at most ${MAX_IMAGES} images.`, 'input');
  return { kind: 'parts', images, hasText: images.length < parsed.data.length };
}

/** The JSON body, through the shared intake (streamed body limit, located syntax errors). */
async function readOpenAiRequest(req: Request, deps: OpenAiRouterDeps): Promise<OpenAiRequest> {
  if (!req.is('application/json'))
    throw badRequest('Send a JSON body (Content-Type: application/json).', 'body');
  // Data URLs sit inside `input`, so the fields may use the whole body allowance.
  const { fields } = await readOptionalSubmission(req, {
    ...deps.intake,
    maxFieldsBytes: deps.intake.maxBodyBytes,
  });
  const { model, input } = fields;
  if (model !== undefined && model !== null && typeof model !== 'string')
    throw badRequest('model must be a string.', 'model');
  if (input === undefined) throw badRequest('input is required.', 'input');
  return { model: model ?? undefined, input: parseInput(input) };
}

/** The policy `model` names when the tenant has one, else the tenant's default policy. */
async function resolvePolicy(
  deps: OpenAiRouterDeps,
  tenant: string,
  model: string | undefined,
): Promise<StoredPolicy | undefined> {
  if (model !== undefined && model !== DEFAULT_POLICY_ID && policyIdPattern.test(model)) {
    const named = await deps.policies.get(tenant, model);
    if (named) return named;
  }
  return deps.policies.get(tenant, DEFAULT_POLICY_ID);
}

/** Bytes from a data URL or an http(s) URL, checked like the native intake; errors name the part. */
async function loadImage(ref: ImageRef, deps: OpenAiRouterDeps): Promise<{ image: Buffer; info: ImageInfo }> {
  try {
    const { image } = await readImageReference({ url: ref.url }, deps.intake);
    return { image, info: await probeImage(image, deps.imageLimits) };
  } catch (error) {
    if (!isClipmodError(error) || !error.isClientError) throw error;
    throw new ClipmodError(error.code, `${ref.field}: ${error.message}`, {
      details: { ...error.details, field: ref.field },
      cause: error,
    });
  }
}

function verdictOf(record: ModerationRecord, waitMs: number): Verdict {
  if (record.status === 'completed' && record.verdict) return record.verdict;
  if (record.status === 'failed') {
    const code = record.error?.code;
    const known: ErrorCode = code !== undefined && code in errorCatalog ? (code as ErrorCode) : 'internal';
    throw new ClipmodError(known, record.error?.message ?? 'moderation failed', {
      details: { moderationId: record.id },
    });
  }
  throw new ClipmodError(
    'timeout',
    `No verdict within ${waitMs} ms; the moderation continues: GET /v1/moderations/${record.id}.`,
    { retryAfterSeconds: 1, details: { moderationId: record.id } },
  );
}

/** Images need a policy; text does not (its result lists no labels when the tenant has none). */
function requirePolicy(policy: StoredPolicy | undefined, model: string | undefined): StoredPolicy {
  if (policy !== undefined) return policy;
  const named = model === undefined ? '' : `no policy "${model}" and `;
  throw new ClipmodError('not_found', `This tenant has ${named}no "${DEFAULT_POLICY_ID}" policy.`, {
    details: { field: 'model' },
  });
}

/**
 * Moderates every image of a parts input. All images are read and checked before the first is
 * submitted, so a bad part fails the request without leaving moderations behind.
 */
async function moderateImages(
  deps: OpenAiRouterDeps,
  tenant: string,
  policyId: string,
  refs: readonly ImageRef[],
  res: Response,
): Promise<Verdict[]> {
  const images = await Promise.all(refs.map((ref) => loadImage(ref, deps)));
  const requestId = requestIdOf(res);
  const submitted = await Promise.all(
    images.map(({ image, info }) =>
      deps.service.submit({
        tenant,
        image,
        info,
        policyId,
        metadata: { via: 'openai' },
        ...(requestId === undefined ? {} : { requestId }),
      }),
    ),
  );
  const ids = submitted.map(({ id }) => id);
  res.setHeader('x-clipmod-moderation-ids', ids.join(','));
  const waitMs = deps.maxSyncWaitMs;
  const records = await Promise.all(ids.map((id) => deps.service.waitForSubmitted(tenant, id, waitMs)));
  return records.map((record) => verdictOf(record, waitMs));
}

/** One unscored result per string; one result for a parts input, scored when it holds images. */
async function resultsFor(
  deps: OpenAiRouterDeps,
  tenant: string,
  { model, input }: OpenAiRequest,
  res: Response,
): Promise<OpenAiModerationResult[]> {
  const policy = await resolvePolicy(deps, tenant, model);
  const labelIds = policy?.document.labels.map((label) => label.id) ?? [];
  if (input.kind === 'texts') return input.texts.map(() => unscoredResult(labelIds));
  if (input.images.length === 0) return [unscoredResult(labelIds)];
  const policyId = requirePolicy(policy, model).id;
  return [resultFromVerdicts(await moderateImages(deps, tenant, policyId, input.images, res))];
}

/** OpenAI's error envelope for clipmod's typed errors; anything unexpected goes to the app's handler. */
const openAiErrors: ErrorRequestHandler = (error: unknown, _req, res, next) => {
  if (!isClipmodError(error) || res.headersSent) {
    next(error);
    return;
  }
  if (error.retryAfterSeconds !== undefined)
    res.setHeader('retry-after', String(Math.ceil(error.retryAfterSeconds)));
  res.status(error.status).json(openAiErrorBody(error));
};

export function openAiModerationRouter(deps: OpenAiRouterDeps): Router {
  const router = express.Router();

  router.post('/openai/v1/moderations', ...deps.guard, async (req, res) => {
    const { tenant } = principalOf(res);
    const request = await readOpenAiRequest(req, deps);
    const results = await resultsFor(deps, tenant, request, res);
    const { input } = request;
    if (input.kind === 'texts' || input.hasText) res.setHeader('x-clipmod-warning', TEXT_WARNING);
    res.json({ id: `modr-${newRequestId()}`, model: request.model ?? DEFAULT_MODEL, results });
  });
  router.use('/openai/v1', openAiErrors);

  return router;
}
