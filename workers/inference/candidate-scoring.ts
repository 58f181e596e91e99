import { ClipmodError, isClipmodError } from '../../shared/errors/index.ts';
import type { Logger } from '../../shared/logger/index.ts';
import type { ModerationRecord } from '../../shared/moderation/index.ts';
import { decideVerdict, type ShadowStats, type Verdict, validatePolicy } from '../../shared/policy/index.ts';
import type { JobPayload } from '../../shared/queue/index.ts';
import type { ImageEmbedding } from './image-embedder.ts';
import { scorePolicy } from './policy-scoring.ts';
import type { PreparedPolicies } from './prepared-policies.ts';

// Scoring against a policy other than the one a moderation acts on: a shadow candidate beside live
// traffic (same image embedding, so the candidate costs text maths, not another model run), or a dry
// run of a stored version or an unsaved draft. Neither ever changes what a moderation does.

export type ShadowResult = NonNullable<ModerationRecord['shadow']>;

/**
 * The shadow candidate's verdict for the image the live policy just scored. A failure is recorded on the
 * result, never thrown: the candidate must not fail, delay by retries, or change the live moderation.
 */
export async function shadowVerdict(
  policies: PreparedPolicies,
  record: ModerationRecord,
  image: ImageEmbedding,
  logitScale: number,
  logger: Logger,
): Promise<ShadowResult | undefined> {
  const { shadow } = record;
  if (shadow === undefined) return undefined;
  try {
    const prepared = await policies.get(record.tenant, record.policy.id, shadow.version);
    const results = scorePolicy(prepared, image.embeddings, image.frameIndexes, logitScale);
    return { version: shadow.version, verdict: decideVerdict(prepared.document, results) };
  } catch (error) {
    const known = isClipmodError(error) ? error : new ClipmodError('internal', 'shadow scoring failed');
    logger.warn(
      { moderationId: record.id, shadowVersion: shadow.version, err: error },
      'shadow scoring failed',
    );
    return { version: shadow.version, error: { code: known.code, message: known.message } };
  }
}

/** Tallies a completed moderation's live-versus-shadow comparison; counting twice is a no-op. */
export async function countShadow(
  stats: Pick<ShadowStats, 'record'> | undefined,
  record: ModerationRecord,
): Promise<void> {
  if (stats === undefined || record.status !== 'completed' || !record.shadow || !record.verdict) return;
  await stats.record({
    tenant: record.tenant,
    policyId: record.policy.id,
    shadowVersion: record.shadow.version,
    moderationId: record.id,
    live: record.verdict,
    shadow: record.shadow.verdict,
  });
}

/**
 * A dry run: the policy first (a draft that fails validation fails before any image work), then the
 * image. The draft was validated by the API with the tokenizer; the shape is checked again here.
 */
export async function testPolicy(
  payload: JobPayload<'policy.test'>,
  policies: PreparedPolicies,
  embedImage: () => Promise<ImageEmbedding>,
  logitScale: number,
): Promise<{ verdict: Verdict }> {
  const { policy } = payload;
  const prepared =
    policy.source === 'stored'
      ? await policies.get(payload.tenant, policy.id, policy.version)
      : await policies.prepare(validatePolicy(policy.document));
  const image = await embedImage();
  const results = scorePolicy(prepared, image.embeddings, image.frameIndexes, logitScale);
  return { verdict: decideVerdict(prepared.document, results) };
}
