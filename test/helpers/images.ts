// Test images: the CLIP preprocessing goldens (test/fixtures/clip-reference/preprocess) and generators
// built with sharp, including hostile inputs (decompression bombs, truncated files, off-list formats).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { deflateSync } from 'node:zlib';
import sharp from 'sharp';

export const GOLDEN_DIR = fileURLToPath(new URL('../fixtures/clip-reference/preprocess/', import.meta.url));

export type GoldenEntry = {
  file: string;
  golden: string;
  crop224: string;
  exif_transposed: boolean;
  mode: string;
  width: number;
  height: number;
  resized_width: number;
  resized_height: number;
  crop_left: number;
  crop_top: number;
};

export function goldenManifest(): GoldenEntry[] {
  const manifest = JSON.parse(readFileSync(`${GOLDEN_DIR}manifest.json`, 'utf8')) as {
    images: GoldenEntry[];
  };
  return manifest.images;
}

export function goldenBytes(file: string): Uint8Array {
  return new Uint8Array(readFileSync(`${GOLDEN_DIR}${file}`));
}

/** A `<stem>.f32` golden: float32 little-endian [3,224,224]. */
export function goldenTensor(file: string): Float32Array {
  const bytes = readFileSync(`${GOLDEN_DIR}${file}`);
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
}

/** A `<stem>.crop224.png` golden as interleaved uint8 RGB. */
export async function goldenCrop(file: string): Promise<Uint8Array> {
  return new Uint8Array(await sharp(`${GOLDEN_DIR}${file}`).removeAlpha().raw().toBuffer());
}

export type Rgb = readonly [number, number, number];

/** A flat-colour image in the given format. */
export async function solidImage(
  format: 'png' | 'jpeg' | 'webp' | 'gif' | 'tiff' | 'avif',
  width: number,
  height: number,
  colour: Rgb = [200, 40, 40],
): Promise<Uint8Array> {
  const image = sharp({
    create: { width, height, channels: 3, background: { r: colour[0], g: colour[1], b: colour[2] } },
  });
  return new Uint8Array(await image.toFormat(format).toBuffer());
}

/** Smooth gradients, so resamplers have something to disagree about. */
export function gradientRaster(width: number, height: number): Uint8Array {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 3;
      data[o] = (x * 255) / Math.max(1, width - 1);
      data[o + 1] = (y * 255) / Math.max(1, height - 1);
      data[o + 2] = ((x + y) * 7) % 256;
    }
  }
  return data;
}

export async function gradientPng(width: number, height: number): Promise<Uint8Array> {
  const raw = { width, height, channels: 3 as const };
  return new Uint8Array(await sharp(gradientRaster(width, height), { raw }).png().toBuffer());
}

/** A JPEG whose EXIF Orientation tag is `orientation`; stored pixels are a left-red/right-blue split. */
export async function jpegWithOrientation(orientation: number, width = 64, height = 32): Promise<Uint8Array> {
  const data = new Uint8Array(width * height * 3);
  for (let p = 0; p < width * height; p++) data.set(p % width < width / 2 ? [255, 0, 0] : [0, 0, 255], p * 3);
  const image = sharp(data, { raw: { width, height, channels: 3 } }).withMetadata({ orientation });
  return new Uint8Array(await image.jpeg({ quality: 95 }).toBuffer());
}

/** An animation with one flat colour per frame, written from a tall strip with `pageHeight`. */
export async function animation(
  format: 'gif' | 'webp',
  colours: readonly Rgb[],
  width = 32,
  height = 24,
): Promise<Uint8Array> {
  const frameBytes = width * height * 3;
  const strip = new Uint8Array(frameBytes * colours.length);
  colours.forEach((colour, frame) => {
    for (let p = 0; p < width * height; p++) strip.set(colour, frame * frameBytes + p * 3);
  });
  const raw = { width, height: height * colours.length, channels: 3 as const, pageHeight: height };
  const image = sharp(strip, { raw });
  const encoded = format === 'gif' ? image.gif() : image.webp({ lossless: true });
  return new Uint8Array(await encoded.toBuffer());
}

function crc32(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? 0xedb88320 ^ (crc >>> 1) : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

function pngChunk(type: string, data: Uint8Array): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt32BE(data.length, 0);
  header.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([header.subarray(4), data])));
  return Buffer.concat([header, data, crc]);
}

/**
 * A decompression bomb: a PNG of a few dozen bytes whose header declares `width`×`height` RGB
 * pixels (its IDAT holds almost nothing, so a decoder that trusts the header allocates the lot).
 */
export function pngDeclaring(width: number, height: number): Uint8Array {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const idat = pngChunk('IDAT', deflateSync(Buffer.alloc(64)));
  return new Uint8Array(
    Buffer.concat([signature, pngChunk('IHDR', ihdr), idat, pngChunk('IEND', new Uint8Array())]),
  );
}

/**
 * Realistic large photos for benchmarks: each golden photo upscaled (lanczos3) to about
 * `targetPixels` and encoded as baseline JPEG q90, like a phone upload after re-encoding.
 */
export async function largePhotoJpegs(targetPixels = 2_800_000): Promise<Uint8Array[]> {
  const photos = ['astronaut.png', 'chelsea.png', 'rocket.jpg', 'coffee-exif6.jpg', 'retina.jpg'];
  return Promise.all(
    photos.map(async (file) => {
      const source = sharp(`${GOLDEN_DIR}${file}`).autoOrient();
      const { width, height } = await source.metadata().then((m) => m.autoOrient);
      const scale = Math.sqrt(targetPixels / (width * height));
      const size = { width: Math.round(width * scale), height: Math.round(height * scale) };
      const jpeg = await source.resize(size).removeAlpha().jpeg({ quality: 90 }).toBuffer();
      return new Uint8Array(jpeg);
    }),
  );
}
