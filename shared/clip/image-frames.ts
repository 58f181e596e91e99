// Animated GIF/WebP: CLIP sees one frame at a time, and an animation can hide content after frame 1,
// so several frames are sampled (first, last, evenly spaced) and each becomes its own tensor.
import { probeImage, resolveLimits } from './image-probe.ts';
import { type PreprocessOptions, preprocessInto, tensorLength } from './preprocess.ts';

/** Decode work per animation is bounded by this many frames unless the caller asks otherwise. */
export const DEFAULT_MAX_SAMPLED_FRAMES = 8;

/**
 * Zero-based frame indexes to score: every frame when there are at most `maxFrames`, otherwise the
 * first, the last and evenly spaced ones in between (ascending, no duplicates).
 */
export function sampleFrameIndexes(
  frameCount: number,
  maxFrames: number = DEFAULT_MAX_SAMPLED_FRAMES,
): number[] {
  if (!Number.isInteger(frameCount) || frameCount < 1)
    throw new RangeError(`frameCount must be >= 1: ${frameCount}`);
  if (!Number.isInteger(maxFrames) || maxFrames < 1)
    throw new RangeError(`maxFrames must be >= 1: ${maxFrames}`);
  if (frameCount <= maxFrames) return Array.from({ length: frameCount }, (_, i) => i);
  if (maxFrames === 1) return [0];
  const step = (frameCount - 1) / (maxFrames - 1);
  // step > 1 here, so rounding i*step never maps two samples to the same frame.
  return Array.from({ length: maxFrames }, (_, i) => Math.round(i * step));
}

export type FrameTensors = {
  /** The frames that were decoded, in order. */
  frameIndexes: number[];
  /** Their tensors back to back: [frameIndexes.length, 3, H, W]. */
  pixelValues: Float32Array;
};

/**
 * Probes once, then preprocesses each sampled frame (sharp's `page` option decodes just that frame,
 * composited over the earlier ones as a viewer would show it). A still image gives one frame.
 */
export async function preprocessFrames(
  bytes: Uint8Array,
  options: PreprocessOptions & { maxFrames?: number } = {},
): Promise<FrameTensors> {
  const limits = resolveLimits(options.limits);
  const info = options.info ?? (await probeImage(bytes, limits));
  const frameIndexes = sampleFrameIndexes(info.frames, options.maxFrames);
  const length = tensorLength(options.config);
  const pixelValues = new Float32Array(frameIndexes.length * length);
  for (const [slot, page] of frameIndexes.entries()) {
    await preprocessInto(bytes, pixelValues, slot * length, { ...options, limits, info, page });
  }
  return { frameIndexes, pixelValues };
}
