import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import {
  normalizeInto,
  planResize,
  preprocessImage,
  preprocessInto,
  preprocessToCrop,
  tensorLength,
} from '../../shared/clip/preprocess.ts';
import { OPENAI_CLIP_PREPROCESSOR, parsePreprocessorConfig } from '../../shared/clip/preprocessor-config.ts';
import {
  goldenBytes,
  goldenManifest,
  gradientPng,
  jpegWithOrientation,
  solidImage,
} from '../helpers/images.ts';

const MEAN = [0.48145466, 0.4578275, 0.40821073];
const STD = [0.26862954, 0.26130258, 0.27577711];

function pixel(crop: { rgb: Uint8Array; width: number }, x: number, y: number): number[] {
  const o = (y * crop.width + x) * 3;
  return [...crop.rgb.subarray(o, o + 3)];
}

describe('planResize', () => {
  it('matches the resized sizes and crop offsets recorded in the golden manifest', () => {
    // The manifest records the size CLIPImageProcessor saw (already upright for the transposed golden).
    for (const entry of goldenManifest()) {
      const plan = planResize(entry.width, entry.height, OPENAI_CLIP_PREPROCESSOR);
      expect([plan.width, plan.height]).toEqual([entry.resized_width, entry.resized_height]);
      expect([plan.crop.left, plan.crop.top]).toEqual([entry.crop_left, entry.crop_top]);
    }
  });

  it('truncates the long side and floors the crop offset (rocket: 640x427 -> 335x224, left 55)', () => {
    expect(planResize(640, 427, OPENAI_CLIP_PREPROCESSOR)).toEqual({
      width: 335,
      height: 224,
      crop: { left: 55, top: 0, width: 224, height: 224 },
    });
  });

  it('resizes to an exact size and takes the whole image when there is no crop', () => {
    const config = parsePreprocessorConfig({ size: { height: 40, width: 30 }, do_center_crop: false });
    expect(planResize(999, 17, config)).toEqual({
      width: 30,
      height: 40,
      crop: { left: 0, top: 0, width: 30, height: 40 },
    });
  });
});

describe('normalizeInto', () => {
  it('equals the float32 formula of the reference for every uint8 value and channel', () => {
    const rgb = new Uint8Array(256 * 3).map((_, i) => Math.floor(i / 3));
    const target = new Float32Array(256 * 3);
    normalizeInto(rgb, target, 0, OPENAI_CLIP_PREPROCESSOR);
    for (let c = 0; c < 3; c++) {
      for (let v = 0; v < 256; v++) {
        const expected = Math.fround(
          Math.fround(Math.fround(v * (1 / 255)) - Math.fround(MEAN[c]!)) / Math.fround(STD[c]!),
        );
        expect(target[c * 256 + v]).toBe(expected);
      }
    }
  });

  it('writes channel-first planes at the offset and leaves the rest of the batch alone', () => {
    const rgb = new Uint8Array([0, 128, 255, 10, 20, 30]);
    const target = new Float32Array(10).fill(-99);
    const config = parsePreprocessorConfig({ do_normalize: false, do_rescale: false });
    normalizeInto(rgb, target, 2, config);
    expect([...target]).toEqual([-99, -99, 0, 10, 128, 20, 255, 30, -99, -99]);
  });

  it('refuses to write past the end of the target', () => {
    expect(() => normalizeInto(new Uint8Array(6), new Float32Array(6), 1, OPENAI_CLIP_PREPROCESSOR)).toThrow(
      RangeError,
    );
  });
});

describe('preprocessInto and preprocessImage', () => {
  it('fills slot 1 of a batch with the same values preprocessImage returns', async () => {
    const bytes = goldenBytes('chelsea.png');
    const length = tensorLength();
    const batch = new Float32Array(3 * length).fill(7);
    await preprocessInto(bytes, batch, length, { orientation: 'raw' });
    const single = await preprocessImage(bytes, { orientation: 'raw' });
    expect(length).toBe(3 * 224 * 224);
    expect(Buffer.from(batch.buffer, length * 4, length * 4).equals(Buffer.from(single.buffer))).toBe(true);
    expect(batch[0]).toBe(7);
    expect(batch[3 * length - 1]).toBe(7);
  });

  it('follows a custom config: 32 px shortest edge gives a [3,32,32] tensor', async () => {
    const config = parsePreprocessorConfig({ size: 32, crop_size: 32 });
    const tensor = await preprocessImage(await gradientPng(90, 60), { config });
    expect(tensor.length).toBe(3 * 32 * 32);
    expect(tensor.every(Number.isFinite)).toBe(true);
  });
});

describe('orientation', () => {
  // Stored pixels: left half red, right half blue. Orientation 6 shows them rotated 90° clockwise,
  // so upright the red half is on top.
  it('uses the stored pixels with orientation raw', async () => {
    const crop = await preprocessToCrop(await jpegWithOrientation(6), { orientation: 'raw' });
    expect(pixel(crop, 20, 112)[0]).toBeGreaterThan(200);
    expect(pixel(crop, 200, 112)[2]).toBeGreaterThan(200);
  });

  it('turns the image upright with orientation exif, the default', async () => {
    const crop = await preprocessToCrop(await jpegWithOrientation(6));
    expect(pixel(crop, 112, 20)[0]).toBeGreaterThan(200);
    expect(pixel(crop, 112, 200)[2]).toBeGreaterThan(200);
  });

  it('gives different tensors for the two orientations of the golden EXIF-6 photo', async () => {
    const bytes = goldenBytes('coffee-exif6.jpg');
    const raw = await preprocessImage(bytes, { orientation: 'raw' });
    const upright = await preprocessImage(bytes);
    expect(Buffer.from(raw.buffer).equals(Buffer.from(upright.buffer))).toBe(false);
  });
});

describe('decoding colour models', () => {
  it('drops alpha without compositing: RGB under transparent pixels is kept', async () => {
    const data = new Uint8Array(300 * 300 * 4);
    for (let p = 0; p < 300 * 300; p++) data.set([10, 200, 30, 0], p * 4);
    const png = await sharp(data, { raw: { width: 300, height: 300, channels: 4 } })
      .png()
      .toBuffer();
    for (const mode of ['exact', 'fast'] as const) {
      const crop = await preprocessToCrop(new Uint8Array(png), { mode });
      expect(pixel(crop, 100, 100)).toEqual([10, 200, 30]);
    }
  });

  it('copies gray into three equal channels', async () => {
    const crop = await preprocessToCrop(goldenBytes('camera.png'));
    const [r, g, b] = pixel(crop, 50, 60);
    expect(r).toBe(g);
    expect(g).toBe(b);
  });

  it('reduces a 16-bit PNG to its high byte', async () => {
    const raw = { width: 240, height: 240, channels: 3 as const };
    const data = new Uint8Array(240 * 240 * 3).map((_, i) => [200, 100, 50][i % 3]!);
    const png16 = await sharp(data, { raw }).toColourspace('rgb16').png().toBuffer();
    expect((await sharp(png16).metadata()).depth).toBe('ushort');
    const crop = await preprocessToCrop(new Uint8Array(png16));
    expect(pixel(crop, 100, 100)).toEqual([200, 100, 50]);
  });

  it('looks up palette colours', async () => {
    const png = await sharp(await solidImage('png', 240, 240, [250, 10, 90]))
      .png({ palette: true })
      .toBuffer();
    expect((await sharp(png).metadata()).isPalette).toBe(true);
    expect(pixel(await preprocessToCrop(new Uint8Array(png)), 5, 5)).toEqual([250, 10, 90]);
  });
});
