// sharp decoding into 8-bit rasters the way Pillow's `Image.convert('RGB')` sees them: embedded ICC
// profiles ignored, alpha dropped (not composited), CMYK by Pillow's naive formula, gray kept as one
// channel (callers copy it to three after resizing, which gives the same bytes for less work).
import sharp, { type Sharp } from 'sharp';
import { decoderError, type ImageInfo, type ImageLimits } from './image-probe.ts';
import type { CropWindow, Raster } from './pillow-resample.ts';

export type DecodeOptions = {
  /** `raw`: stored pixels (what CLIPImageProcessor sees); `exif`: upright, as a viewer shows it. */
  orientation: 'raw' | 'exif';
  /** Frame of an animation, zero-based. */
  page: number;
  limits: ImageLimits;
};

function openImage(bytes: Uint8Array, options: DecodeOptions): Sharp {
  return sharp(bytes, {
    ignoreIcc: true,
    // 'warning' also rejects truncated JPEG/PNG data instead of scoring a half-grey image.
    failOn: 'warning',
    limitInputPixels: options.limits.maxPixels,
    autoOrient: options.orientation === 'exif',
    page: options.page,
  }).timeout({ seconds: options.limits.decodeTimeoutSeconds });
}

async function toRaster(pipeline: Sharp): Promise<Raster> {
  const { data, info } = await pipeline
    .raw()
    .toBuffer({ resolveWithObject: true })
    .catch((error: unknown) => {
      throw decoderError(error);
    });
  const pixels = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return { data: pixels, width: info.width, height: info.height, channels: info.channels };
}

/** Pillow's cmyk2rgb: `nk - MULDIV255(c, nk)` per channel, with `nk = 255 - K`; no ICC involved. */
export function cmykToRgb(cmyk: Raster): Raster {
  const pixelCount = cmyk.width * cmyk.height;
  const rgb = new Uint8Array(pixelCount * 3);
  const src = cmyk.data;
  for (let p = 0, s = 0, o = 0; p < pixelCount; p++, s += cmyk.channels, o += 3) {
    const nk = 255 - src[s + 3]!;
    for (let c = 0; c < 3; c++) {
      const t = src[s + c]! * nk + 128;
      // Never negative: MULDIV255(c, nk) <= nk, so no clamp is needed.
      rgb[o + c] = nk - (((t >> 8) + t) >> 8);
    }
  }
  return { data: rgb, width: cmyk.width, height: cmyk.height, channels: 3 };
}

/**
 * Full-resolution decode to 1 (gray) or 3 (RGB) channels. Call `probeImage` first: it enforces the
 * format allow-list and limits that this function relies on.
 */
export async function decodeRaster(
  bytes: Uint8Array,
  info: ImageInfo,
  options: DecodeOptions,
): Promise<Raster> {
  const pipeline = openImage(bytes, options).removeAlpha();
  if (info.space === 'cmyk') {
    // Keep CMYK through the pipeline; sharp would otherwise convert it with an ICC CMYK profile.
    return cmykToRgb(await toRaster(pipeline.pipelineColourspace('cmyk').toColourspace('cmyk')));
  }
  return toRaster(pipeline);
}

/**
 * The `fast` path: sharp resizes (cubic) and crops in one pipeline, with JPEG/WebP shrink-on-load.
 * Images with alpha or CMYK are decoded first (alpha would be premultiplied inside sharp's resize,
 * turning transparent pixels black), then resized from that raster. Upscales never come here
 * (preprocess.ts sends them to the exact resampler).
 *
 * Measured |fast - golden| on the normalised tensor, max / mean (one uint8 step ≈ 0.015), sharp
 * 0.35.5 / libvips 8.18.7:
 *   astronaut 0.085 / 0.0028   chelsea 0.030 / 0.0033   rocket (Adobe RGB) 0.044 / 0.0015
 *   retina (6.3× shrink) 1.504 / 0.0182 (JPEG shrink-on-load by 4; 0.058 / 0.0077 without it)
 *   camera (L) 0.045 / 0.0028   imagemagick-logo (RGBA) 0.219 / 0.0042   coffee-cmyk 0.100 / 0.0028
 *   coffee-exif6 raw 0.058 / 0.0028, exif 0.044 / 0.0028   astronaut-tiny (upscale) 0 / 0
 * Cost on ≈2.8 MP JPEG q90 photos (test/bench/preprocess-bench.ts, 2 shared cores): fast ≈ 12 CPU-ms
 * per image against ≈ 33 for exact (most of it the full-resolution decode) and ≈ 11 for a bare sharp
 * resize loop.
 */
export async function decodeResizedFast(
  bytes: Uint8Array,
  info: ImageInfo,
  options: DecodeOptions,
  size: { width: number; height: number },
  crop: CropWindow,
): Promise<Raster> {
  const region = { left: crop.left, top: crop.top, width: crop.width, height: crop.height };
  const resize = { width: size.width, height: size.height, fit: 'fill', kernel: 'cubic' } as const;
  if (!info.hasAlpha && info.space !== 'cmyk') {
    return toRaster(openImage(bytes, options).resize(resize).extract(region));
  }
  const raster = await decodeRaster(bytes, info, options);
  const raw = { width: raster.width, height: raster.height, channels: raster.channels as 1 | 3 };
  return toRaster(sharp(raster.data, { raw }).resize(resize).extract(region));
}
