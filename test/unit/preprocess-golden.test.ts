import { describe, expect, it } from 'vitest';
import { preprocessImage, preprocessToCrop } from '../../shared/clip/preprocess.ts';
import { goldenBytes, goldenCrop, goldenManifest, goldenTensor } from '../helpers/images.ts';

const goldens = goldenManifest();

function bytesOf(values: Float32Array): Buffer {
  return Buffer.from(values.buffer, values.byteOffset, values.byteLength);
}

function differences(actual: Float32Array, expected: Float32Array) {
  let max = 0;
  let sum = 0;
  for (let i = 0; i < expected.length; i++) {
    const delta = Math.abs(actual[i]! - expected[i]!);
    max = Math.max(max, delta);
    sum += delta;
  }
  return { max, mean: sum / expected.length };
}

describe('exact preprocessing against the Hugging Face CLIPImageProcessor goldens', () => {
  it('covers all 10 goldens of the 9 reference images', () => {
    expect(goldens).toHaveLength(10);
    expect(new Set(goldens.map((entry) => entry.file)).size).toBe(9);
  });

  for (const entry of goldens) {
    const orientation = entry.exif_transposed ? 'exif' : 'raw';

    it(`reproduces ${entry.golden} bit for bit (${entry.mode} ${entry.width}x${entry.height}, ${orientation})`, async () => {
      const tensor = await preprocessImage(goldenBytes(entry.file), { orientation });
      const expected = goldenTensor(entry.golden);
      expect(tensor.length).toBe(expected.length);
      // Compare the raw float32 bytes: exact equality, not a tolerance.
      expect(bytesOf(tensor).equals(bytesOf(expected))).toBe(true);
    });

    it(`reproduces ${entry.crop224} as the uint8 crop`, async () => {
      const crop = await preprocessToCrop(goldenBytes(entry.file), { orientation });
      expect([crop.width, crop.height]).toEqual([224, 224]);
      expect(Buffer.from(crop.rgb).equals(Buffer.from(await goldenCrop(entry.crop224)))).toBe(true);
    });
  }
});

describe('fast preprocessing against the same goldens', () => {
  // Bounds are the measured values (see the table at the top of image-decode.ts) with a little slack:
  // a libvips upgrade that makes sharp's resize drift further should fail here.
  const bounds: Record<string, { max: number; mean: number }> = {
    'retina.f32': { max: 1.6, mean: 0.02 },
    'imagemagick-logo.f32': { max: 0.25, mean: 0.005 },
    'astronaut-tiny.f32': { max: 0, mean: 0 },
  };

  for (const entry of goldens) {
    const orientation = entry.exif_transposed ? 'exif' : 'raw';
    const bound = bounds[entry.golden] ?? { max: 0.11, mean: 0.004 };

    it(`stays within max ${bound.max} / mean ${bound.mean} of ${entry.golden}`, async () => {
      const tensor = await preprocessImage(goldenBytes(entry.file), { orientation, mode: 'fast' });
      const { max, mean } = differences(tensor, goldenTensor(entry.golden));
      expect(max).toBeLessThanOrEqual(bound.max);
      expect(mean).toBeLessThanOrEqual(bound.mean);
    });
  }

  it('differs from exact on a downscaled photo (sharp really resizes in fast mode)', async () => {
    const bytes = goldenBytes('chelsea.png');
    const fast = await preprocessImage(bytes, { mode: 'fast' });
    const exact = await preprocessImage(bytes, { mode: 'exact' });
    expect(differences(fast, exact).max).toBeGreaterThan(0);
  });
});
