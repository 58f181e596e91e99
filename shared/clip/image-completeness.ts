import { ClipmodError } from '../errors/index.ts';
import type { ImageFormat } from './image-probe.ts';

// libvips decodes a file that ends early inside its image data by filling the rest (grey for JPEG,
// black for PNG), even with failOn 'warning'; Pillow, which CLIPImageProcessor uses, refuses it
// ("image file is truncated"). A moderation service must not score pixels the uploader never sent,
// so each format's end-of-data marker is checked before decoding: data appended after it (ZIP or HTML
// polyglots, camera trailers) is allowed, data cut off before it is not.

const pngEnd = Buffer.from('IEND');
const pngData = Buffer.from('IDAT');

const startOfScan = Buffer.from([0xff, 0xda]);
const endOfImage = Buffer.from([0xff, 0xd9]);

/** JPEG: an EOI marker after the start of the last scan (inside scans 0xFF is always escaped). */
function isJpegComplete(bytes: Buffer): boolean {
  const lastScan = bytes.lastIndexOf(startOfScan);
  return lastScan >= 0 && bytes.indexOf(endOfImage, lastScan + 2) >= 0;
}

/** PNG: a whole IEND chunk (type and CRC) after the last image-data chunk. */
function isPngComplete(bytes: Buffer): boolean {
  const end = bytes.lastIndexOf(pngEnd);
  return end > 0 && end > bytes.lastIndexOf(pngData) && end + 8 <= bytes.length;
}

/** WebP: the RIFF container's declared length fits in what arrived. */
function isWebpComplete(bytes: Buffer): boolean {
  return bytes.length >= 12 && bytes.readUInt32LE(4) + 8 <= bytes.length;
}

/** GIF: the trailer byte 0x3B is present somewhere after the header. */
function isGifComplete(bytes: Buffer): boolean {
  return bytes.lastIndexOf(0x3b) > 12;
}

const checks: Partial<Record<ImageFormat, (bytes: Buffer) => boolean>> = {
  jpeg: isJpegComplete,
  png: isPngComplete,
  webp: isWebpComplete,
  gif: isGifComplete,
};

/** Throws `corrupt_image` when the file ends before its format's end-of-data marker. */
export function assertImageComplete(bytes: Uint8Array, format: ImageFormat): void {
  const check = checks[format];
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (check && !check(buffer)) {
    throw new ClipmodError('corrupt_image', `Image data ends early: the ${format} file is truncated.`, {
      details: { reason: 'truncated', format },
    });
  }
}
