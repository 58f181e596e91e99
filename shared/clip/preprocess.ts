// Image bytes -> CLIP pixel_values. `exact` mode reproduces Hugging Face CLIPImageProcessor bit for
// bit (sharp decode + Pillow-compatible bicubic, see ../shared/clip-reference/README.md §4); `fast`
// mode lets sharp resize, trading a small, measured deviation for speed.
import { ClipmodError } from '../errors/index.ts';
import { decodeRaster, decodeResizedFast } from './image-decode.ts';
import { type ImageInfo, type ImageLimits, probeImage, resolveLimits } from './image-probe.ts';
import { type CropWindow, type Raster, resizeBicubic } from './pillow-resample.ts';
import { OPENAI_CLIP_PREPROCESSOR, type PreprocessorConfig } from './preprocessor-config.ts';

export type PreprocessMode = 'exact' | 'fast';

export type PreprocessOptions = {
  /** Default `exact`. */
  mode?: PreprocessMode;
  /** Default `exif` (upright, what a person moderating the image sees); `raw` matches CLIPImageProcessor. */
  orientation?: 'raw' | 'exif';
  /** Default `OPENAI_CLIP_PREPROCESSOR`. */
  config?: PreprocessorConfig;
  limits?: Partial<ImageLimits>;
  /** Frame of an animated image, zero-based (default 0). */
  page?: number;
  /** A `probeImage` result for these bytes, to skip probing them again. */
  info?: ImageInfo;
};

/** The uint8 RGB crop before rescale/normalise, interleaved (HWC). */
export type RgbCrop = { rgb: Uint8Array; width: number; height: number };

export type ResizePlan = { width: number; height: number; crop: CropWindow };

/** Resized size and centre-crop window for an image of `width`×`height`, as CLIPImageProcessor computes them. */
export function planResize(width: number, height: number, config: PreprocessorConfig): ResizePlan {
  const { resize, output } = config;
  let resizedWidth = resize.kind === 'exact' ? resize.width : 0;
  let resizedHeight = resize.kind === 'exact' ? resize.height : 0;
  if (resize.kind === 'shortest-edge') {
    // transformers: new_long = int(size * long / short), a truncation, not a rounding.
    const isWide = width >= height;
    const long = Math.trunc((resize.shortestEdge * (isWide ? width : height)) / (isWide ? height : width));
    resizedWidth = isWide ? long : resize.shortestEdge;
    resizedHeight = isWide ? resize.shortestEdge : long;
  }
  const left = Math.floor((resizedWidth - output.width) / 2);
  const top = Math.floor((resizedHeight - output.height) / 2);
  return { width: resizedWidth, height: resizedHeight, crop: { left, top, ...output } };
}

/** Gray rasters are resized as one channel (same bytes as resizing three equal channels), then widened. */
function toRgb(raster: Raster): Uint8Array {
  if (raster.channels === 3) return raster.data;
  const pixelCount = raster.width * raster.height;
  const rgb = new Uint8Array(pixelCount * 3);
  for (let p = 0, s = 0; p < pixelCount; p++, s += raster.channels) {
    const value = raster.data[s]!;
    rgb[p * 3] = value;
    rgb[p * 3 + 1] = value;
    rgb[p * 3 + 2] = value;
  }
  return rgb;
}

/**
 * Decodes, resizes and centre-crops: the uint8 image the model's tensor is computed from. sharp
 * decodes on libuv's pool (about 23 CPU-ms for a 2.8 MP JPEG); the exact resampler's SIMD kernels run
 * synchronously on the calling thread (about 10 ms for the same photo).
 */
export async function preprocessToCrop(bytes: Uint8Array, options: PreprocessOptions = {}): Promise<RgbCrop> {
  const config = options.config ?? OPENAI_CLIP_PREPROCESSOR;
  const limits = resolveLimits(options.limits);
  const info = options.info ?? (await probeImage(bytes, limits));
  const page = options.page ?? 0;
  if (!Number.isInteger(page) || page < 0 || page >= info.frames) {
    throw new ClipmodError('bad_request', `Frame ${page} does not exist; the image has ${info.frames}.`, {
      details: { page, frames: info.frames },
    });
  }
  const orientation = options.orientation ?? 'exif';
  const decode = { orientation, page, limits };
  const isUpright = orientation === 'exif';
  const width = isUpright ? info.uprightWidth : info.width;
  const height = isUpright ? info.uprightHeight : info.height;
  const plan = planResize(width, height, config);
  // Upscales always take the exact path: their source is small, so the Pillow resampler is cheap,
  // while sharp's resize is not pixel-centre aligned when enlarging (README §4: max |Δ| 0.99).
  const isDownscale = plan.width < width || plan.height < height;
  const raster =
    options.mode === 'fast' && isDownscale
      ? await decodeResizedFast(bytes, info, decode, plan, plan.crop)
      : resizeBicubic(await decodeRaster(bytes, info, decode), plan.width, plan.height, plan.crop);
  return { rgb: toRgb(raster), width: raster.width, height: raster.height };
}

/** 256 float32 values per channel: every uint8 maps to one normalised value, so a lookup is exact. */
function normalizationTable(config: PreprocessorConfig): Float32Array {
  const table = new Float32Array(3 * 256);
  for (let c = 0; c < 3; c++) {
    const mean = Math.fround(config.normalize?.mean[c] ?? 0);
    const std = Math.fround(config.normalize?.std[c] ?? 1);
    for (let v = 0; v < 256; v++) {
      // numpy: (u8 * factor) in float64, cast to float32; then float32 subtract and divide.
      const scaled = config.rescaleFactor === null ? v : Math.fround(v * config.rescaleFactor);
      table[c * 256 + v] = config.normalize === null ? scaled : Math.fround(Math.fround(scaled - mean) / std);
    }
  }
  return table;
}

const tables = new WeakMap<PreprocessorConfig, Float32Array>();

/** Writes `rgb` (HWC uint8) as rescaled, normalised CHW float32 into `target` from `offset`. */
export function normalizeInto(
  rgb: Uint8Array,
  target: Float32Array,
  offset: number,
  config: PreprocessorConfig,
): void {
  const plane = rgb.length / 3;
  if (!Number.isInteger(plane) || offset < 0 || offset + rgb.length > target.length) {
    throw new RangeError(
      `cannot write ${rgb.length} values at offset ${offset} of a ${target.length}-value tensor`,
    );
  }
  let table = tables.get(config);
  if (table === undefined) {
    table = normalizationTable(config);
    tables.set(config, table);
  }
  for (let p = 0; p < plane; p++) {
    target[offset + p] = table[rgb[p * 3]!]!;
    target[offset + plane + p] = table[256 + rgb[p * 3 + 1]!]!;
    target[offset + 2 * plane + p] = table[512 + rgb[p * 3 + 2]!]!;
  }
}

/** Number of float32 values in one image's tensor ([3, H, W]). */
export function tensorLength(config: PreprocessorConfig = OPENAI_CLIP_PREPROCESSOR): number {
  return 3 * config.output.width * config.output.height;
}

/** Preprocesses one image straight into a batch tensor at `offset` (no intermediate float array). */
export async function preprocessInto(
  bytes: Uint8Array,
  target: Float32Array,
  offset: number,
  options: PreprocessOptions = {},
): Promise<void> {
  const crop = await preprocessToCrop(bytes, options);
  normalizeInto(crop.rgb, target, offset, options.config ?? OPENAI_CLIP_PREPROCESSOR);
}

/** Preprocesses one image into its own [3, H, W] float32 tensor. */
export async function preprocessImage(
  bytes: Uint8Array,
  options: PreprocessOptions = {},
): Promise<Float32Array> {
  const tensor = new Float32Array(tensorLength(options.config));
  await preprocessInto(bytes, tensor, 0, options);
  return tensor;
}
