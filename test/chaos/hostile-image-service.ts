// The real service (API + inference in this process, the `color` model, libvips restricted the way
// `clipmod serve` restricts it) for the hostile-image rows I1–I7, and one call that turns any
// submission into a comparable outcome string.
import { configureImageDecoding } from '../../shared/clip/index.ts';
import { builtModel } from '../helpers/models.ts';
import { type ServiceHarness, startService } from '../helpers/service-harness.ts';

/** Codes a hostile image may legitimately end in (RELIABILITY I1); anything else is a bug. */
export const typedImageCodes = ['unsupported_format', 'corrupt_image', 'image_too_large', 'empty_image'];

export type ImageOutcome = {
  /** `block`/`allow`/… for a verdict, `error:<code>` for a refusal or a failed moderation. */
  outcome: string;
  status: number;
  ms: number;
  body: Record<string, unknown>;
};

export async function startImageService(): Promise<ServiceHarness> {
  configureImageDecoding();
  const service = await startService({
    env: { MODEL_DIR: await builtModel('color'), CLIPMOD_MAX_BATCH_SIZE: '8', CLIPMOD_INTRA_OP_THREADS: '1' },
  });
  const put = await service.request('/v1/policies/default', {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      labels: [{ id: 'red', prompts: ['a red image'], threshold: 0.5, action: 'block' }],
      baseline: ['a green image', 'a blue image', 'a yellow image', 'a black image', 'a white image'],
    }),
  });
  if (put.status !== 201) throw new Error(`policy: HTTP ${put.status}`);
  return service;
}

/** POSTs raw bytes (declared as PNG: the format is decided by magic bytes) and waits for the verdict. */
export async function moderateImage(service: ServiceHarness, bytes: Uint8Array): Promise<ImageOutcome> {
  const startedAt = performance.now();
  const response = await service.request('/v1/moderations?wait=20000', {
    method: 'POST',
    headers: { 'content-type': 'image/png' },
    body: bytes,
    signal: AbortSignal.timeout(30_000),
  });
  const body = (await response.json()) as Record<string, any>;
  const ms = performance.now() - startedAt;
  const code = body.code ?? body.error?.code;
  const outcome = body.verdict ? String(body.verdict.action) : `error:${code ?? response.status}`;
  return { outcome, status: response.status, ms, body };
}

/** True for a verdict or a typed image error; false for a 5xx, a hang's timeout or an unknown code. */
export function isAcceptableOutcome(result: ImageOutcome): boolean {
  if (result.status >= 500) return false;
  if (!result.outcome.startsWith('error:')) return result.status === 200;
  return typedImageCodes.includes(result.outcome.slice('error:'.length));
}
