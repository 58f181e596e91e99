// Header-only inspection of untrusted image bytes: format by magic bytes against an allow-list, then
// sharp's metadata (which parses headers without decoding pixels) checked against size limits, so a
// decompression bomb is refused before anything is allocated for its pixels.
import sharp from 'sharp';
import { ClipmodError } from '../errors/index.ts';
import { assertImageComplete } from './image-completeness.ts';

/**
 * Formats clipmod may decode. The default allow-list is jpeg, png, webp and gif: what browsers and
 * phones upload. `avif` can be opted into; it is off by default because its decoder (libheif + aom)
 * is a large, young attack surface. Never decoded: TIFF (a container of many codecs and IFDs, long
 * CVE history, not a web upload format), HEIC (HEVC is not in sharp's prebuilt libvips), BMP/ICO
 * (no libvips loader without ImageMagick), SVG (XML: external entities, fetches, script, CPU bombs)
 * and PDF/magick/raw/vips (heavyweight loaders, some able to read files named inside the input).
 */
export type ImageFormat = 'jpeg' | 'png' | 'webp' | 'gif' | 'avif';

export type ImageLimits = Readonly<{
  /** Pixels of one frame (stored width × height). */
  maxPixels: number;
  /** Longest side in pixels. */
  maxSidePx: number;
  /** Longest side over shortest side; CLIP sees only the centre square, so a strip is mostly cropped away. */
  maxAspectRatio: number;
  /** Frames of an animation; only a few are ever decoded, but libvips scans them all. */
  maxFrames: number;
  /**
   * Frames × frame pixels. Decoding frame k of a GIF/WebP replays frames 0..k, so this bounds the
   * work of sampling late frames (measured: ~0.3 ms per 200×150 GIF frame, ~1.4 ms for WebP).
   */
  maxAnimationPixels: number;
  /** Allowed formats, decided by magic bytes. */
  formats: readonly ImageFormat[];
  /** Wall-clock limit libvips applies to one decode. */
  decodeTimeoutSeconds: number;
}>;

export const DEFAULT_IMAGE_LIMITS: ImageLimits = Object.freeze({
  maxPixels: 40_000_000,
  maxSidePx: 16_384,
  maxAspectRatio: 20,
  maxFrames: 1_000,
  maxAnimationPixels: 50_000_000,
  formats: Object.freeze(['jpeg', 'png', 'webp', 'gif'] as const),
  decodeTimeoutSeconds: 10,
});

export type ImageInfo = {
  format: ImageFormat;
  /** Stored size of one frame, before EXIF orientation. */
  width: number;
  height: number;
  /** EXIF orientation 1..8 (1 when absent). */
  orientation: number;
  /** Size after applying EXIF orientation (sides swapped for orientations 5..8). */
  uprightWidth: number;
  uprightHeight: number;
  /** 1 for still images. */
  frames: number;
  hasAlpha: boolean;
  /** libvips interpretation, e.g. `srgb`, `b-w`, `cmyk`, `rgb16`, `grey16`. */
  space: string;
  channels: number;
  isPalette: boolean;
  sizeBytes: number;
};

/** Names of formats recognised by their magic bytes, allowed or not (for a precise error message). */
export type SniffedFormat =
  | ImageFormat
  | 'heic'
  | 'tiff'
  | 'bmp'
  | 'ico'
  | 'jxl'
  | 'jp2'
  | 'pdf'
  | 'svg'
  | 'psd';

function startsWith(bytes: Uint8Array, signature: readonly number[], offset = 0): boolean {
  if (bytes.length < offset + signature.length) return false;
  return signature.every((value, i) => bytes[offset + i] === value);
}

function ascii(bytes: Uint8Array, start: number, end: number): string {
  return String.fromCharCode(...bytes.subarray(start, end));
}

/** ISO-BMFF `ftyp` brands tell AVIF from HEIC; anything else in that box is unknown. */
function sniffFtyp(bytes: Uint8Array): SniffedFormat | null {
  const boxSize = Math.min(
    bytes.length,
    ((bytes[0]! << 24) | (bytes[1]! << 16) | (bytes[2]! << 8) | bytes[3]!) >>> 0,
  );
  const brands = [ascii(bytes, 8, 12)];
  for (let offset = 16; offset + 4 <= boxSize; offset += 4) brands.push(ascii(bytes, offset, offset + 4));
  if (brands.some((brand) => brand === 'avif' || brand === 'avis')) return 'avif';
  if (
    brands.some((brand) => ['heic', 'heix', 'hevc', 'hevx', 'heim', 'heis', 'mif1', 'msf1'].includes(brand))
  ) {
    return 'heic';
  }
  return null;
}

/** The format the bytes announce, from magic numbers only; `null` when unrecognised. */
export function sniffImageFormat(bytes: Uint8Array): SniffedFormat | null {
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return 'jpeg';
  if (startsWith(bytes, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'png';
  if (ascii(bytes, 0, 6) === 'GIF87a' || ascii(bytes, 0, 6) === 'GIF89a') return 'gif';
  if (ascii(bytes, 0, 4) === 'RIFF' && ascii(bytes, 8, 12) === 'WEBP') return 'webp';
  if (bytes.length >= 12 && ascii(bytes, 4, 8) === 'ftyp') return sniffFtyp(bytes);
  if (ascii(bytes, 0, 4) === 'II*\0' || ascii(bytes, 0, 4) === 'MM\0*') return 'tiff';
  if (ascii(bytes, 0, 2) === 'BM') return 'bmp';
  if (startsWith(bytes, [0, 0, 1, 0])) return 'ico';
  if (startsWith(bytes, [0xff, 0x0a]) || ascii(bytes, 4, 8) === 'JXL ') return 'jxl';
  if (ascii(bytes, 4, 8) === 'jP  ') return 'jp2';
  if (ascii(bytes, 0, 5) === '%PDF-') return 'pdf';
  if (ascii(bytes, 0, 4) === '8BPS') return 'psd';
  if (/^\s*(<\?xml|<svg|<!DOCTYPE svg)/i.test(ascii(bytes, 0, 256))) return 'svg';
  return null;
}

/** What sharp's metadata must report for each allowed format (AVIF is read by the HEIF loader). */
const SHARP_FORMAT: Record<ImageFormat, string> = {
  jpeg: 'jpeg',
  png: 'png',
  webp: 'webp',
  gif: 'gif',
  avif: 'heif',
};

/** Turns a sharp/libvips failure into a typed client error (never a stack trace). */
export function decoderError(error: unknown): ClipmodError {
  const message = error instanceof Error ? error.message : String(error);
  const decoder = message.split('\n')[0]?.slice(0, 200) ?? '';
  if (/pixel limit/i.test(message)) {
    return new ClipmodError('image_too_large', 'Image exceeds the pixel limit.', { details: { decoder } });
  }
  if (/unsupported image format|is blocked/i.test(message)) {
    return new ClipmodError('unsupported_format', 'Image format is not supported.', { details: { decoder } });
  }
  return new ClipmodError('corrupt_image', 'Image could not be decoded.', {
    details: { decoder },
    cause: error,
  });
}

function checkFormat(bytes: Uint8Array, limits: ImageLimits): ImageFormat {
  if (bytes.length === 0) throw new ClipmodError('empty_image', 'Image is empty (0 bytes).');
  const sniffed = sniffImageFormat(bytes);
  const allowed = limits.formats as readonly string[];
  if (sniffed === null || !allowed.includes(sniffed)) {
    const what = sniffed ?? 'unrecognised data';
    throw new ClipmodError('unsupported_format', `Image format not accepted: ${what}.`, {
      details: { format: sniffed, allowed: limits.formats },
    });
  }
  return sniffed as ImageFormat;
}

function tooLarge(message: string, details: Record<string, unknown>): ClipmodError {
  return new ClipmodError('image_too_large', message, { details });
}

function checkGeometry(width: number, height: number, frames: number, limits: ImageLimits): void {
  if (width < 1 || height < 1)
    throw new ClipmodError('corrupt_image', `Image has no pixels (${width}x${height}).`);
  if (Math.max(width, height) > limits.maxSidePx) {
    throw tooLarge(`Image side exceeds ${limits.maxSidePx} px.`, { width, height, limit: limits.maxSidePx });
  }
  if (width * height > limits.maxPixels) {
    throw tooLarge(`Image exceeds ${limits.maxPixels} pixels.`, { width, height, limit: limits.maxPixels });
  }
  if (Math.max(width, height) / Math.min(width, height) > limits.maxAspectRatio) {
    throw tooLarge(`Image aspect ratio exceeds ${limits.maxAspectRatio}:1.`, {
      width,
      height,
      limit: limits.maxAspectRatio,
    });
  }
  if (frames > limits.maxFrames) {
    throw tooLarge(`Animation has more than ${limits.maxFrames} frames.`, {
      frames,
      limit: limits.maxFrames,
    });
  }
  if (frames > 1 && frames * width * height > limits.maxAnimationPixels) {
    throw tooLarge(`Animation exceeds ${limits.maxAnimationPixels} pixels over all frames.`, {
      frames,
      width,
      height,
      limit: limits.maxAnimationPixels,
    });
  }
}

/** Merges caller overrides into the defaults. */
export function resolveLimits(limits?: Partial<ImageLimits>): ImageLimits {
  return limits === undefined ? DEFAULT_IMAGE_LIMITS : { ...DEFAULT_IMAGE_LIMITS, ...limits };
}

/**
 * Reads only the header and refuses what clipmod will not decode: empty input (`empty_image`),
 * formats off the allow-list (`unsupported_format`), unparseable headers (`corrupt_image`) and
 * anything over the limits (`image_too_large`).
 */
export async function probeImage(bytes: Uint8Array, limits?: Partial<ImageLimits>): Promise<ImageInfo> {
  const resolved = resolveLimits(limits);
  const format = checkFormat(bytes, resolved);
  assertImageComplete(bytes, format);
  // The pixel limit is checked by hand below; turning sharp's off here keeps our own error message.
  const metadata = await sharp(bytes, { limitInputPixels: false, failOn: 'warning' })
    .metadata()
    .catch((error: unknown) => {
      throw decoderError(error);
    });
  const isExpectedDecoder =
    metadata.format === SHARP_FORMAT[format] && (format !== 'avif' || metadata.compression === 'av1');
  if (!isExpectedDecoder) {
    throw new ClipmodError('unsupported_format', `Image format not accepted: ${metadata.format}.`, {
      details: { format: metadata.format },
    });
  }
  const frames = metadata.pages ?? 1;
  checkGeometry(metadata.width, metadata.height, frames, resolved);
  const stored = metadata.orientation ?? 1;
  const orientation = Number.isInteger(stored) && stored >= 1 && stored <= 8 ? stored : 1;
  const isTransposed = orientation >= 5;
  return {
    format,
    width: metadata.width,
    height: metadata.height,
    orientation,
    uprightWidth: isTransposed ? metadata.height : metadata.width,
    uprightHeight: isTransposed ? metadata.width : metadata.height,
    frames,
    hasAlpha: metadata.hasAlpha,
    space: metadata.space,
    channels: metadata.channels,
    isPalette: metadata.isPalette,
    sizeBytes: bytes.length,
  };
}

/** libvips loader classes behind each allowed format (buffer input is all clipmod uses). */
const LOADERS: Record<ImageFormat, string> = {
  jpeg: 'VipsForeignLoadJpegBuffer',
  png: 'VipsForeignLoadPngBuffer',
  webp: 'VipsForeignLoadWebpBuffer',
  gif: 'VipsForeignLoadNsgifBuffer',
  avif: 'VipsForeignLoadHeifBuffer',
};

/**
 * Process-wide second fence behind the magic-byte check: block every libvips loader except the
 * allowed ones. It changes global sharp state, so processes call it once at start (main.ts), not
 * library code.
 */
export function restrictSharpLoaders(formats: readonly ImageFormat[] = DEFAULT_IMAGE_LIMITS.formats): void {
  sharp.block({ operation: ['VipsForeignLoad'] });
  sharp.unblock({ operation: formats.map((format) => LOADERS[format]) });
}

/**
 * Process-wide libvips settings for a service: only the allowed loaders, and no operation cache
 * (every submitted image is new, so the cache would only hold memory). Called once by `serve`.
 */
export function configureImageDecoding(formats: readonly ImageFormat[] = DEFAULT_IMAGE_LIMITS.formats): void {
  restrictSharpLoaders(formats);
  sharp.cache(false);
}
