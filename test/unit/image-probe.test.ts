import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_IMAGE_LIMITS,
  probeImage,
  restrictSharpLoaders,
  sniffImageFormat,
} from '../../shared/clip/image-probe.ts';
import { preprocessImage } from '../../shared/clip/preprocess.ts';
import { ClipmodError } from '../../shared/errors/index.ts';
import { animation, goldenBytes, pngDeclaring, solidImage } from '../helpers/images.ts';

async function rejection(promise: Promise<unknown>): Promise<ClipmodError> {
  const error = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(ClipmodError);
  return error as ClipmodError;
}

const text = (value: string) => new TextEncoder().encode(value);

describe('probeImage: accepted images', () => {
  it('reports format, size, frames, alpha and colour space from the header', async () => {
    const info = await probeImage(goldenBytes('imagemagick-logo.png'));
    expect(info).toMatchObject({
      format: 'png',
      width: 2135,
      height: 2048,
      frames: 1,
      hasAlpha: true,
      space: 'srgb',
    });
    expect(info.sizeBytes).toBe(goldenBytes('imagemagick-logo.png').length);
  });

  it('reports a CMYK JPEG as cmyk and a gray PNG as b-w', async () => {
    expect((await probeImage(goldenBytes('coffee-cmyk.jpg'))).space).toBe('cmyk');
    expect((await probeImage(goldenBytes('camera.png'))).space).toBe('b-w');
  });

  it('swaps the upright size for EXIF orientation 6 but keeps the stored size', async () => {
    const info = await probeImage(goldenBytes('coffee-exif6.jpg'));
    expect([info.width, info.height, info.orientation]).toEqual([400, 600, 6]);
    expect([info.uprightWidth, info.uprightHeight]).toEqual([600, 400]);
  });

  it('accepts jpeg, png, webp and gif by default', async () => {
    for (const format of ['jpeg', 'png', 'webp', 'gif'] as const) {
      expect((await probeImage(await solidImage(format, 8, 8))).format).toBe(format);
    }
  });

  it('counts the frames of an animated GIF', async () => {
    const gif = await animation('gif', [
      [255, 0, 0],
      [0, 255, 0],
      [0, 0, 255],
    ]);
    expect(await probeImage(gif)).toMatchObject({ format: 'gif', frames: 3, width: 32, height: 24 });
  });

  it('accepts AVIF only when the caller allows it', async () => {
    const avif = await solidImage('avif', 16, 16);
    expect((await rejection(probeImage(avif))).code).toBe('unsupported_format');
    const info = await probeImage(avif, { formats: [...DEFAULT_IMAGE_LIMITS.formats, 'avif'] });
    expect(info.format).toBe('avif');
  });
});

describe('probeImage: refused inputs', () => {
  it('answers empty_image for zero bytes', async () => {
    expect((await rejection(probeImage(new Uint8Array()))).code).toBe('empty_image');
  });

  it('refuses TIFF even though sharp could decode it', async () => {
    const error = await rejection(probeImage(await solidImage('tiff', 8, 8)));
    expect(error.code).toBe('unsupported_format');
    expect(error.message).toContain('tiff');
  });

  it('refuses SVG, including one served with a harmless-looking prefix of whitespace', async () => {
    const svg =
      '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>';
    expect((await rejection(probeImage(text(svg)))).code).toBe('unsupported_format');
    expect((await rejection(probeImage(text(`  \n<?xml version="1.0"?>${svg}`)))).code).toBe(
      'unsupported_format',
    );
  });

  it('refuses HTML, JSON, PDF and random bytes as unsupported_format', async () => {
    for (const body of ['<!doctype html><p>hi</p>', '{"image":1}', '%PDF-1.7\n']) {
      expect((await rejection(probeImage(text(body)))).code).toBe('unsupported_format');
    }
    const noise = Uint8Array.from({ length: 512 }, (_, i) => (i * 73 + 11) % 256);
    expect((await rejection(probeImage(noise))).code).toBe('unsupported_format');
  });

  it('decides by magic bytes: a PNG signature followed by garbage is corrupt, not another format', async () => {
    const fake = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3, 4, 5, 6]);
    expect((await rejection(probeImage(fake))).code).toBe('corrupt_image');
  });

  it('refuses a 69-byte PNG declaring 100000x100000 pixels quickly, without decoding it', async () => {
    const bomb = pngDeclaring(100_000, 100_000);
    const started = performance.now();
    const error = await rejection(probeImage(bomb));
    expect(error.code).toBe('image_too_large');
    expect(error.details).toMatchObject({ width: 100_000, height: 100_000 });
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it('refuses images over the pixel, side and aspect-ratio limits', async () => {
    const png = await solidImage('png', 400, 10);
    expect((await rejection(probeImage(png, { maxPixels: 3_999 }))).code).toBe('image_too_large');
    expect((await rejection(probeImage(png, { maxSidePx: 399 }))).code).toBe('image_too_large');
    const error = await rejection(probeImage(png));
    expect(error.code).toBe('image_too_large');
    expect(error.message).toContain('aspect ratio');
    expect((await probeImage(png, { maxAspectRatio: 40 })).width).toBe(400);
  });

  it('refuses animations over the frame-count and total-pixel limits', async () => {
    const gif = await animation(
      'gif',
      [
        [255, 0, 0],
        [0, 255, 0],
        [0, 0, 255],
      ],
      10,
      10,
    );
    expect((await rejection(probeImage(gif, { maxFrames: 2 }))).code).toBe('image_too_large');
    expect((await rejection(probeImage(gif, { maxAnimationPixels: 299 }))).code).toBe('image_too_large');
    expect((await probeImage(gif, { maxAnimationPixels: 300 })).frames).toBe(3);
  });
});

describe('sniffImageFormat', () => {
  it('names formats by their signatures', async () => {
    expect(sniffImageFormat(await solidImage('jpeg', 4, 4))).toBe('jpeg');
    expect(sniffImageFormat(await solidImage('webp', 4, 4))).toBe('webp');
    expect(sniffImageFormat(await solidImage('avif', 4, 4))).toBe('avif');
    expect(sniffImageFormat(text('BM\0\0\0\0'))).toBe('bmp');
    expect(sniffImageFormat(text('GIF89a'))).toBe('gif');
    expect(sniffImageFormat(text('hello'))).toBeNull();
  });
});

describe('decoding refused or broken inputs through preprocessImage', () => {
  it('answers corrupt_image for a truncated JPEG whose header is intact, before decoding', async () => {
    const jpeg = goldenBytes('rocket.jpg');
    const truncated = jpeg.subarray(0, jpeg.length >> 1);
    const refused = await rejection(probeImage(truncated));
    expect([refused.code, refused.details.reason]).toEqual(['corrupt_image', 'truncated']);
    expect((await rejection(preprocessImage(truncated))).code).toBe('corrupt_image');
  });

  it('answers corrupt_image for a PNG cut short', async () => {
    const png = goldenBytes('chelsea.png');
    expect((await rejection(preprocessImage(png.subarray(0, png.length - 5_000)))).code).toBe(
      'corrupt_image',
    );
  });

  it('answers image_too_large for the bomb instead of allocating it', async () => {
    expect((await rejection(preprocessImage(pngDeclaring(100_000, 100_000)))).code).toBe('image_too_large');
  });

  it('still refuses the bomb at decode when handed a probe result that lies (sharp pixel limit)', async () => {
    const bomb = pngDeclaring(20_000, 20_000);
    const small = await probeImage(await solidImage('png', 8, 8));
    expect((await rejection(preprocessImage(bomb, { info: small }))).code).toBe('image_too_large');
  });
});

describe('restrictSharpLoaders', () => {
  it('leaves sharp unable to load anything but the allowed formats', async () => {
    const tiff = await solidImage('tiff', 8, 8);
    const png = await solidImage('png', 8, 8);
    restrictSharpLoaders(['png']);
    try {
      await expect(sharp(tiff).raw().toBuffer()).rejects.toThrow(/unsupported image format/);
      expect((await sharp(png).raw().toBuffer()).length).toBe(8 * 8 * 3);
    } finally {
      sharp.unblock({ operation: ['VipsForeignLoad'] });
    }
  });
});
