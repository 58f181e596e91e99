// A port of Pillow's separable bicubic resampler (libImaging/Resample.c, 8-bit path) so that
// `exact` preprocessing reproduces Hugging Face CLIPImageProcessor bit for bit. Pure functions over
// typed arrays: no sharp, no I/O, safe to run in a worker thread.

/** Interleaved 8-bit pixels, row-major, `channels` bytes per pixel. */
export type Raster = {
  data: Uint8Array;
  width: number;
  height: number;
  channels: number;
};

/** A window of the resized image; only these output pixels are computed. */
export type CropWindow = { left: number; top: number; width: number; height: number };

// Pillow stores weights with 22 fractional bits so that 255 * sum(|w|) * 2^22 stays inside int32;
// the accumulators below use `| 0` int32 arithmetic for the same reason (and for V8's fast path).
const PRECISION_BITS = 22;
const ONE = 1 << PRECISION_BITS;
const HALF = 1 << (PRECISION_BITS - 1);
const MAX_ACCUMULATOR = 256 << PRECISION_BITS;
const BICUBIC_SUPPORT = 2;

/** Keys cubic with a = -0.5, exactly as Pillow writes it (the order of operations matters). */
function bicubic(x: number): number {
  const a = -0.5;
  const t = x < 0 ? -x : x;
  if (t < 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
  if (t < 2) return (((t - 5) * t + 8) * t - 4) * a;
  return 0;
}

/** Integer taps for a contiguous range of output pixels along one axis. */
export type AxisCoefficients = {
  /** First source index of each output pixel. */
  starts: Int32Array;
  /** Number of taps of each output pixel. */
  counts: Int32Array;
  /** Fixed-point weights, `stride` slots per output pixel. */
  weights: Int32Array;
  stride: number;
};

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

function clip8(accumulator: number): number {
  if (accumulator >= MAX_ACCUMULATOR) return 255;
  if (accumulator <= 0) return 0;
  return accumulator >> PRECISION_BITS;
}

/** Horizontal pass over source rows `rowStart .. rowStart+rowCount-1`. */
function resampleRows(src: Raster, rowStart: number, rowCount: number, axis: AxisCoefficients): Uint8Array {
  const { data, width, channels } = src;
  const { starts, counts, weights, stride } = axis;
  const outWidth = starts.length;
  const out = new Uint8Array(outWidth * rowCount * channels);
  let o = 0;
  for (let y = 0; y < rowCount; y++) {
    const rowOffset = (rowStart + y) * width * channels;
    for (let x = 0; x < outWidth; x++) {
      const base = rowOffset + starts[x]! * channels;
      const n = counts[x]!;
      const k = x * stride;
      if (channels === 3) {
        // The common case gets three accumulators so each weight is loaded once.
        let r = HALF;
        let g = HALF;
        let b = HALF;
        for (let t = 0, s = base; t < n; t++, s += 3) {
          const w = weights[k + t]!;
          r = (r + Math.imul(data[s]!, w)) | 0;
          g = (g + Math.imul(data[s + 1]!, w)) | 0;
          b = (b + Math.imul(data[s + 2]!, w)) | 0;
        }
        out[o] = clip8(r);
        out[o + 1] = clip8(g);
        out[o + 2] = clip8(b);
        o += 3;
        continue;
      }
      for (let c = 0; c < channels; c++) {
        let sum = HALF;
        for (let t = 0, s = base + c; t < n; t++, s += channels)
          sum = (sum + Math.imul(data[s]!, weights[k + t]!)) | 0;
        out[o++] = clip8(sum);
      }
    }
  }
  return out;
}

/** Vertical pass; `rows` holds only the source rows from `rowStart` on. */
function resampleColumns(
  rows: Uint8Array,
  rowWidth: number,
  channels: number,
  rowStart: number,
  axis: AxisCoefficients,
) {
  const { starts, counts, weights, stride } = axis;
  const outHeight = starts.length;
  const rowBytes = rowWidth * channels;
  const out = new Uint8Array(outHeight * rowBytes);
  const sums = new Int32Array(rowBytes);
  for (let y = 0; y < outHeight; y++) {
    const first = (starts[y]! - rowStart) * rowBytes;
    const n = counts[y]!;
    const k = y * stride;
    sums.fill(HALF);
    // Tap-major order walks each source row sequentially instead of striding down columns.
    for (let t = 0; t < n; t++) {
      const w = weights[k + t]!;
      const row = first + t * rowBytes;
      for (let i = 0; i < rowBytes; i++) sums[i] = (sums[i]! + Math.imul(rows[row + i]!, w)) | 0;
    }
    const o = y * rowBytes;
    for (let i = 0; i < rowBytes; i++) out[o + i] = clip8(sums[i]!);
  }
  return out;
}

/**
 * Resize `src` to `outWidth`×`outHeight` with Pillow's BICUBIC filter (antialiased when shrinking)
 * and return only the pixels inside `crop` (default: all of them). Bit-identical to
 * `Image.resize((outWidth, outHeight), BICUBIC).crop(crop)` on 8-bit images.
 */
export function resizeBicubic(src: Raster, outWidth: number, outHeight: number, crop?: CropWindow): Raster {
  const window = crop ?? { left: 0, top: 0, width: outWidth, height: outHeight };
  checkGeometry(src, outWidth, outHeight, window);
  const { channels } = src;
  const horizontal = axisCoefficients(src.width, outWidth, window.left, window.width);
  const vertical = axisCoefficients(src.height, outHeight, window.top, window.height);
  const last = window.height - 1;
  const rowStart = vertical.starts[0]!;
  const rowEnd = vertical.starts[last]! + vertical.counts[last]!;
  // Only the source rows the vertical pass reads go through the (more expensive) horizontal pass.
  const rows = resampleRows(src, rowStart, rowEnd - rowStart, horizontal);
  const data = resampleColumns(rows, window.width, channels, rowStart, vertical);
  return { data, width: window.width, height: window.height, channels };
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
