// The image's format is decided by its magic bytes, never by the type a client declares, and it is
// checked as soon as the first bytes arrive, so a stream of HTML, SVG or garbage is refused without
// being read to the end. The full header probe (dimensions, limits) happens later, in the route.

import { type ImageFormat, sniffImageFormat } from '../../../shared/clip/index.ts';
import { ClipmodError } from '../../../shared/errors/index.ts';
import { type BodyLimit, limitExceeded } from './body-stream.ts';

/** Enough for every signature sniffImageFormat knows, the ISO-BMFF brand list and an SVG prologue. */
const SNIFF_BYTES = 256;

export type CheckedImage = { image: Buffer; format: ImageFormat };

export function imageLimit(maxBytes: number): BodyLimit {
  return { maxBytes, code: 'image_too_large', subject: 'image' };
}

function checkFormat(head: Uint8Array, formats: readonly ImageFormat[]): ImageFormat {
  const sniffed = sniffImageFormat(head);
  const format = formats.find((allowed) => allowed === sniffed);
  if (format !== undefined) return format;
  const what = sniffed ?? 'unrecognised data';
  throw new ClipmodError(
    'unsupported_format',
    `Image format not accepted: ${what}; send ${formats.join(', ')}.`,
    { details: { format: sniffed, allowed: formats } },
  );
}

/** Empty, over the byte limit, or not an allowed format by its magic bytes: refused. */
export function checkImage(image: Buffer, maxBytes: number, formats: readonly ImageFormat[]): CheckedImage {
  if (image.length === 0) throw new ClipmodError('empty_image', 'Image is empty (0 bytes).');
  if (image.length > maxBytes) throw limitExceeded(imageLimit(maxBytes));
  return { image, format: checkFormat(image, formats) };
}

export type ImageCollector = {
  /** Throws `image_too_large` past the limit and `unsupported_format` once the head is known. */
  push(chunk: Buffer): void;
  finish(): CheckedImage;
};

export function createImageCollector(maxBytes: number, formats: readonly ImageFormat[]): ImageCollector {
  const chunks: Buffer[] = [];
  let sizeBytes = 0;
  let isSniffed = false;
  return {
    push(chunk) {
      sizeBytes += chunk.length;
      if (sizeBytes > maxBytes) throw limitExceeded(imageLimit(maxBytes));
      chunks.push(chunk);
      if (!isSniffed && sizeBytes >= SNIFF_BYTES) {
        checkFormat(Buffer.concat(chunks, sizeBytes), formats);
        isSniffed = true;
      }
    },
    finish: () => checkImage(Buffer.concat(chunks, sizeBytes), maxBytes, formats),
  };
}
