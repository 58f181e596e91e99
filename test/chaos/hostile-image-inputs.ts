// Generators for the hostile-image rows (RELIABILITY I2–I7): headers declaring huge canvases, a real
// deflate bomb, truncations, polyglots, colour/geometry variants and off-list formats. All built in
// memory with sharp and zlib, so no fixture files are committed.
import { deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { gradientRaster, type Rgb, solidImage } from '../helpers/images.ts';

const u16le = (value: number) => [value & 0xff, value >> 8];

/** A GIF whose screen and one image descriptor declare width × height, with a token LZW stream. */
export function gifDeclaring(width: number, height: number): Uint8Array {
  const header = [...Buffer.from('GIF89a'), ...u16le(width), ...u16le(height), 0, 0, 0];
  const descriptor = [0x2c, 0, 0, 0, 0, ...u16le(width), ...u16le(height), 0];
  return new Uint8Array([...header, ...descriptor, 2, 2, 0x4c, 0x01, 0, 0x3b]);
}

/** A lossless WebP (VP8L) header declaring width × height (each ≤ 16384) over a few bytes of data. */
export function webpDeclaring(width: number, height: number): Uint8Array {
  const bits = (width - 1) | ((height - 1) << 14);
  const vp8l = Buffer.from([
    0x2f,
    bits & 0xff,
    (bits >>> 8) & 0xff,
    (bits >>> 16) & 0xff,
    bits >>> 24,
    0,
    0,
    0,
  ]);
  const chunk = Buffer.concat([Buffer.from('VP8L'), Buffer.from([vp8l.length, 0, 0, 0]), vp8l]);
  const riff = Buffer.alloc(12);
  riff.write('RIFF', 0, 'latin1');
  riff.writeUInt32LE(4 + chunk.length, 4);
  riff.write('WEBP', 8, 'latin1');
  return new Uint8Array(Buffer.concat([riff, chunk]));
}

/** A genuine grey PNG whose IDAT inflates to width × height zero pixels (plus filter bytes). */
export function deflateBombPng(width: number, height: number): Uint8Array {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const idat = deflateSync(Buffer.alloc((width + 1) * height), { level: 9 });
  const chunks = [pngChunk('IHDR', ihdr), pngChunk('IDAT', idat), pngChunk('IEND', new Uint8Array())];
  return new Uint8Array(Buffer.concat([signature, ...chunks]));
}

function crc32(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? 0xedb88320 ^ (crc >>> 1) : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

export function pngChunk(type: string, data: Uint8Array): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt32BE(data.length, 0);
  header.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([header.subarray(4), data])));
  return Buffer.concat([header, data, crc]);
}

/** The same red/green gradient-free test card in every allowed format, for truncation sweeps. */
export async function seedImages(): Promise<Record<'jpeg' | 'png' | 'webp' | 'gif', Uint8Array>> {
  const raw = { width: 96, height: 72, channels: 3 as const };
  const card = () => sharp(gradientRaster(raw.width, raw.height), { raw });
  return {
    jpeg: new Uint8Array(await card().jpeg({ quality: 90 }).toBuffer()),
    png: new Uint8Array(await card().png().toBuffer()),
    webp: new Uint8Array(await card().webp({ quality: 80 }).toBuffer()),
    gif: new Uint8Array(await card().gif().toBuffer()),
  };
}

/** `count` prefixes of `bytes`, cut at offsets spread over the whole file (never the full length). */
export function truncations(bytes: Uint8Array, count: number): Uint8Array[] {
  const offsets = new Set<number>();
  for (let i = 1; i <= count; i++) offsets.add(Math.floor((bytes.length * i) / (count + 1)));
  return [...offsets].map((offset) => bytes.subarray(0, offset));
}

const red: Rgb = [230, 20, 20];
const green: Rgb = [20, 200, 30];

/** Colour and geometry variants of a red image (I5): every one should still be blocked. */
export async function redVariants(): Promise<Record<string, Uint8Array>> {
  const solid = () =>
    sharp({ create: { width: 64, height: 48, channels: 3, background: { r: 230, g: 20, b: 20 } } });
  const transparentRed = sharp({
    create: { width: 64, height: 48, channels: 4, background: { r: 230, g: 20, b: 20, alpha: 0 } },
  });
  return {
    'cmyk-jpeg': new Uint8Array(await solid().toColourspace('cmyk').jpeg().toBuffer()),
    'rgb16-png': new Uint8Array(await solid().toColourspace('rgb16').png().toBuffer()),
    'display-p3-png': new Uint8Array(await solid().withIccProfile('p3').png().toBuffer()),
    'rgba-opaque-png': new Uint8Array(await solid().ensureAlpha(1).png().toBuffer()),
    // Alpha hides the red from a viewer; the model sees stored pixels, so it is still flagged.
    'alpha-hidden-png': new Uint8Array(await transparentRed.png().toBuffer()),
    'grey-alpha-of-red-png': new Uint8Array(await solid().ensureAlpha(0.5).png().toBuffer()),
  };
}

export async function greenPng(): Promise<Uint8Array> {
  return solidImage('png', 64, 48, green);
}

export async function redPng(): Promise<Uint8Array> {
  return solidImage('png', 64, 48, red);
}

/** Formats clipmod refuses (I6), as real files where sharp writes them and as signatures otherwise. */
export async function blockedFormats(canaryUrl: string): Promise<Record<string, Uint8Array>> {
  const text = (value: string) => new Uint8Array(Buffer.from(value));
  const xxe = `<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x SYSTEM "${canaryUrl}/xxe">]><svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><image href="${canaryUrl}/href"/><text>&x;</text></svg>`;
  const bmp = Buffer.alloc(58);
  bmp.write('BM', 0, 'latin1');
  bmp.writeUInt32LE(58, 2);
  bmp.writeUInt32LE(54, 10);
  bmp.writeUInt32LE(40, 14);
  bmp.writeInt32LE(1, 18);
  bmp.writeInt32LE(1, 22);
  bmp.writeUInt16LE(1, 26);
  bmp.writeUInt16LE(24, 28);
  return {
    svg: text(
      '<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><rect fill="red" width="8" height="8"/></svg>',
    ),
    'svg-xxe': text(xxe),
    pdf: text('%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n'),
    tiff: await solidImage('tiff', 16, 16, red),
    avif: await solidImage('avif', 16, 16, red),
    heic: new Uint8Array([0, 0, 0, 24, ...Buffer.from('ftypheic'), 0, 0, 0, 0, ...Buffer.from('mif1heic')]),
    bmp: new Uint8Array(bmp),
    ico: new Uint8Array([0, 0, 1, 0, 1, 0, 16, 16, 0, 0, 1, 0, 32, 0, 0, 0, 0, 0, 22, 0, 0, 0]),
    psd: new Uint8Array([
      ...Buffer.from('8BPS'),
      0,
      1,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      3,
      0,
      0,
      0,
      16,
      0,
      0,
      0,
      16,
      0,
      8,
      0,
      3,
    ]),
    jxl: new Uint8Array([0xff, 0x0a, 0xfa, 0x7f, 0x01, 0x90, 0x08]),
    qoi: new Uint8Array([...Buffer.from('qoif'), 0, 0, 0, 16, 0, 0, 0, 16, 3, 0]),
    tga: new Uint8Array([0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 24, 0, 230, 20, 20]),
  };
}
