import { describe, expect, it } from 'vitest';
import {
  type AxisCoefficients,
  axisCoefficients,
  type Raster,
  resizeBicubic,
} from '../../shared/clip/pillow-resample.ts';
import { gradientRaster } from '../helpers/images.ts';

function gradient(width: number, height: number): Raster {
  return { data: gradientRaster(width, height), width, height, channels: 3 };
}

/** Byte-wise equality of two typed arrays (vitest's deep equality is slow on large ones). */
function sameBytes(a: ArrayBufferView, b: ArrayBufferView): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(
    Buffer.from(b.buffer, b.byteOffset, b.byteLength),
  );
}

function cropOf(full: Raster, left: number, top: number, width: number, height: number): Uint8Array {
  const out = new Uint8Array(width * height * full.channels);
  for (let y = 0; y < height; y++) {
    const start = ((top + y) * full.width + left) * full.channels;
    out.set(full.data.subarray(start, start + width * full.channels), y * width * full.channels);
  }
  return out;
}

describe('axisCoefficients', () => {
  it('gives fixed-point weights that sum to 1.0 (2^22) within rounding, for down- and upscales', () => {
    for (const [inSize, outSize] of [
      [1411, 224],
      [160, 298],
      [451, 336],
    ] as const) {
      const axis = axisCoefficients(inSize, outSize, 0, outSize);
      for (let i = 0; i < outSize; i++) {
        let sum = 0;
        for (let t = 0; t < axis.counts[i]!; t++) sum += axis.weights[i * axis.stride + t]!;
        expect(Math.abs(sum - 2 ** 22)).toBeLessThanOrEqual(axis.counts[i]!);
      }
    }
  });

  it('widens the support with the scale when shrinking (antialiasing)', () => {
    const shrink = axisCoefficients(1000, 100, 50, 1);
    const same = axisCoefficients(100, 100, 50, 1);
    expect(shrink.counts[0]).toBe(40);
    expect(same.counts[0]).toBe(4);
  });

  it('computes a sub-range identical to the same slice of the full range', () => {
    const full = axisCoefficients(640, 335, 0, 335);
    const part = axisCoefficients(640, 335, 55, 224);
    expect(sameBytes(part.starts, full.starts.subarray(55, 279))).toBe(true);
    expect(sameBytes(part.weights, full.weights.subarray(55 * full.stride, 279 * full.stride))).toBe(true);
  });
});

describe('resizeBicubic', () => {
  it('returns exactly the crop window of the full resize', () => {
    const src = gradient(301, 157);
    const full = resizeBicubic(src, 120, 80);
    const crop = resizeBicubic(src, 120, 80, { left: 17, top: 9, width: 64, height: 50 });
    expect([crop.width, crop.height, crop.channels]).toEqual([64, 50, 3]);
    expect(sameBytes(crop.data, cropOf(full, 17, 9, 64, 50))).toBe(true);
  });

  it('keeps a flat colour flat when shrinking and enlarging', () => {
    const flat: Raster = { data: new Uint8Array(90 * 70 * 3).fill(137), width: 90, height: 70, channels: 3 };
    for (const [w, h] of [
      [31, 23],
      [200, 150],
    ] as const) {
      expect(resizeBicubic(flat, w, h).data.every((value) => value === 137)).toBe(true);
    }
  });

  it('is the identity when the size does not change', () => {
    const src = gradient(40, 30);
    expect(sameBytes(resizeBicubic(src, 40, 30).data, src.data)).toBe(true);
  });

  it('resizes one gray channel to the same bytes as three equal channels', () => {
    const width = 123;
    const height = 77;
    const gray = gradientRaster(width, height).filter((_, i) => i % 3 === 0);
    const rgb = new Uint8Array(gray.length * 3).map((_, i) => gray[Math.floor(i / 3)]!);
    const one = resizeBicubic({ data: gray, width, height, channels: 1 }, 50, 31);
    const three = resizeBicubic({ data: rgb, width, height, channels: 3 }, 50, 31);
    expect(
      sameBytes(
        three.data.filter((_, i) => i % 3 === 0),
        one.data,
      ),
    ).toBe(true);
  });

  it('clamps the cubic overshoot at a hard edge instead of wrapping around', () => {
    const width = 16;
    const data = new Uint8Array(width * 3).map((_, i) => (Math.floor(i / 3) < width / 2 ? 0 : 255));
    const out = resizeBicubic({ data, width, height: 1, channels: 3 }, 37, 1).data;
    const dark = out.subarray(0, 3 * 15);
    const bright = out.subarray(3 * 22);
    // Keys a=-0.5 undershoots below 0 next to the edge; wrapped values would show up as ~250 here.
    expect(Math.max(...dark)).toBeLessThan(128);
    expect(Math.min(...bright)).toBeGreaterThan(127);
    expect(dark[0]).toBe(0);
  });

  it('rejects a crop window outside the resized image', () => {
    expect(() => resizeBicubic(gradient(10, 10), 8, 8, { left: 4, top: 0, width: 5, height: 8 })).toThrow(
      RangeError,
    );
  });
});

/** Pillow's two passes written plainly (scalar int32, one channel at a time): what the kernels must equal. */
function referenceResize(src: Raster, outWidth: number, outHeight: number): Uint8Array {
  const clip8 = (sum: number) => Math.min(255, Math.max(0, sum >> 22));
  const pass = (read: (i: number, tap: number) => number, axis: AxisCoefficients, i: number) => {
    let sum = 1 << 21;
    for (let t = 0; t < axis.counts[i]!; t++) {
      sum = (sum + Math.imul(read(axis.starts[i]! + t, t), axis.weights[i * axis.stride + t]!)) | 0;
    }
    return clip8(sum);
  };
  const { width, height, channels, data } = src;
  const horizontal = axisCoefficients(width, outWidth, 0, outWidth);
  const vertical = axisCoefficients(height, outHeight, 0, outHeight);
  const rows = new Uint8Array(outWidth * height * channels);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < outWidth; x++)
      for (let c = 0; c < channels; c++)
        rows[(y * outWidth + x) * channels + c] = pass(
          (s) => data[(y * width + s) * channels + c]!,
          horizontal,
          x,
        );
  const out = new Uint8Array(outWidth * outHeight * channels);
  for (let y = 0; y < outHeight; y++)
    for (let x = 0; x < outWidth; x++)
      for (let c = 0; c < channels; c++)
        out[(y * outWidth + x) * channels + c] = pass(
          (s) => rows[(s * outWidth + x) * channels + c]!,
          vertical,
          y,
        );
  return out;
}

/** Deterministic noise: every bit of the accumulators matters, unlike smooth gradients. */
function noiseRaster(width: number, height: number, channels: number, seed: number): Raster {
  let state = seed;
  const data = new Uint8Array(width * height * channels).map(() => {
    state = (Math.imul(state, 1664525) + 1013904223) | 0;
    return state >>> 24;
  });
  return { data, width, height, channels };
}

describe('resizeBicubic SIMD kernels against a plain scalar port', () => {
  const cases = [
    { name: 'a strong downscale with an odd source height', src: [997, 333], out: [131, 44] },
    { name: 'an upscale', src: [23, 17], out: [61, 40] },
    { name: 'a downscale on one axis and an upscale on the other', src: [301, 9], out: [37, 29] },
    { name: 'a single output pixel', src: [50, 41], out: [1, 1] },
    { name: 'output rows narrower than one SIMD vector', src: [40, 30], out: [3, 7] },
  ] as const;
  for (const { name, src, out } of cases) {
    for (const channels of [1, 3]) {
      it(`matches byte for byte on ${name}, ${channels} channel(s)`, () => {
        const raster = noiseRaster(src[0], src[1], channels, src[0] * 7 + channels);
        const actual = resizeBicubic(raster, out[0], out[1]).data;
        expect(sameBytes(actual, referenceResize(raster, out[0], out[1]))).toBe(true);
      });
    }
  }

  it('resizes an image too large for the kept kernel memory, and the next small one is unaffected', () => {
    const small = noiseRaster(64, 48, 3, 1);
    const first = resizeBicubic(small, 21, 16).data;
    // 5000 x 5000 RGB is 75 MB of source alone: past the 64 MiB the kernels keep between calls.
    const large: Raster = {
      data: new Uint8Array(5000 * 5000 * 3).fill(137),
      width: 5000,
      height: 5000,
      channels: 3,
    };
    expect(resizeBicubic(large, 224, 224).data.every((value) => value === 137)).toBe(true);
    expect(sameBytes(resizeBicubic(small, 21, 16).data, first)).toBe(true);
  });
});
