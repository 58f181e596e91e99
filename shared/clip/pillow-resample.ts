// A port of Pillow's separable bicubic resampler (libImaging/Resample.c, 8-bit path) so that
// `exact` preprocessing reproduces Hugging Face CLIPImageProcessor bit for bit. The weights are computed
// here; the two passes run as WebAssembly SIMD kernels (resample-kernel.ts). Pure functions over typed
// arrays: no sharp, no I/O, safe to run in a worker thread.
import { type AxisCoefficients, runKernels } from './resample-kernel.ts';

export type { AxisCoefficients } from './resample-kernel.ts';

/** Interleaved 8-bit pixels, row-major, `channels` bytes per pixel. */
export type Raster = {
  data: Uint8Array;
  width: number;
  height: number;
  channels: number;
};

/** A window of the resized image; only these output pixels are computed. */
export type CropWindow = { left: number; top: number; width: number; height: number };

// Pillow stores weights with 22 fractional bits so that 255 * sum(|w|) * 2^22 stays inside int32, the
// width of the kernels' accumulators.
const ONE = 1 << 22;
const BICUBIC_SUPPORT = 2;

/** Keys cubic with a = -0.5, exactly as Pillow writes it (the order of operations matters). */
function bicubic(x: number): number {
  const a = -0.5;
  const t = x < 0 ? -x : x;
  if (t < 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
  if (t < 2) return (((t - 5) * t + 8) * t - 4) * a;
  return 0;
}

/**
 * Weights for output pixels `first .. first+count-1` of a resize from `inSize` to `outSize`.
 * Each output pixel's taps depend only on its own index, so computing a sub-range gives the same
 * numbers Pillow computes for the full row.
 */
export function axisCoefficients(
  inSize: number,
  outSize: number,
  first: number,
  count: number,
): AxisCoefficients {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = BICUBIC_SUPPORT * filterScale;
  const stride = Math.ceil(support) * 2 + 1;
  const starts = new Int32Array(count);
  const counts = new Int32Array(count);
  const weights = new Int32Array(count * stride);
  const taps = new Float64Array(stride);
  const inverseScale = 1 / filterScale;
  for (let i = 0; i < count; i++) {
    const center = (first + i + 0.5) * scale;
    const xmin = Math.max(0, Math.trunc(center - support + 0.5));
    const xmax = Math.min(inSize, Math.trunc(center + support + 0.5));
    const n = xmax - xmin;
    let total = 0;
    for (let x = 0; x < n; x++) {
      const w = bicubic((x + xmin - center + 0.5) * inverseScale);
      taps[x] = w;
      total += w;
    }
    for (let x = 0; x < n; x++) {
      const w = total === 0 ? (taps[x] ?? 0) : (taps[x] ?? 0) / total;
      // Round half away from zero, as Pillow's normalize_coeffs_8bpc does.
      weights[i * stride + x] = w < 0 ? Math.trunc(-0.5 + w * ONE) : Math.trunc(0.5 + w * ONE);
    }
    starts[i] = xmin;
    counts[i] = n;
  }
  return { starts, counts, weights, stride };
}

/**
 * Resize `src` to `outWidth`×`outHeight` with Pillow's BICUBIC filter (antialiased when shrinking)
 * and return only the pixels inside `crop` (default: all of them). Bit-identical to
 * `Image.resize((outWidth, outHeight), BICUBIC).crop(crop)` on 8-bit images.
 */
export function resizeBicubic(src: Raster, outWidth: number, outHeight: number, crop?: CropWindow): Raster {
  const window = crop ?? { left: 0, top: 0, width: outWidth, height: outHeight };
  checkGeometry(src, outWidth, outHeight, window);
  const horizontal = axisCoefficients(src.width, outWidth, window.left, window.width);
  const vertical = axisCoefficients(src.height, outHeight, window.top, window.height);
  // Only the source rows and columns some tap reaches are handed to the kernels.
  const left = horizontal.starts[0]!;
  const top = vertical.starts[0]!;
  const right = horizontal.starts[window.width - 1]! + horizontal.counts[window.width - 1]!;
  const bottom = vertical.starts[window.height - 1]! + vertical.counts[window.height - 1]!;
  const data = runKernels({
    source: src.data,
    sourceWidth: src.width,
    channels: src.channels,
    window: { left, top, width: right - left, height: bottom - top },
    horizontal: { ...horizontal, starts: horizontal.starts.map((start) => start - left) },
    vertical: { ...vertical, starts: vertical.starts.map((start) => start - top) },
  });
  return { data, width: window.width, height: window.height, channels: src.channels };
}

function checkGeometry(src: Raster, outWidth: number, outHeight: number, crop: CropWindow): void {
  const fits =
    crop.width > 0 &&
    crop.height > 0 &&
    crop.left >= 0 &&
    crop.top >= 0 &&
    crop.left + crop.width <= outWidth &&
    crop.top + crop.height <= outHeight;
  if (!fits) throw new RangeError(`crop ${JSON.stringify(crop)} does not fit in ${outWidth}x${outHeight}`);
  if (src.data.length < src.width * src.height * src.channels || src.width < 1 || src.height < 1) {
    throw new RangeError(
      `raster ${src.width}x${src.height}x${src.channels} is empty or larger than its data`,
    );
  }
}
