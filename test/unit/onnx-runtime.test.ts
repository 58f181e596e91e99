import { describe, expect, it } from 'vitest';
import { float16ToFloat32, float32ToFloat16, listOnnxBackends } from '../../shared/clip/onnx-runtime.ts';

const toBits = (values: number[]) => [...float32ToFloat16(Float32Array.from(values))];

describe('float16 conversion for fp16 graphs', () => {
  it('encodes normal, extreme and special values to IEEE half bits', () => {
    expect(toBits([1, -2, 0.5, 65504, 0, -0])).toEqual([0x3c00, 0xc000, 0x3800, 0x7bff, 0, 0x8000]);
    expect(toBits([70000, Number.NEGATIVE_INFINITY])).toEqual([0x7c00, 0xfc00]);
    expect(toBits([Number.NaN])[0]! & 0x7fff).toBeGreaterThan(0x7c00);
  });

  it('rounds to nearest with ties to even', () => {
    // 1 + 2^-11 lies halfway between 1 (even mantissa) and 1 + 2^-10; 1 + 3·2^-11 rounds up to the even 1 + 2^-9.
    expect(toBits([1 + 2 ** -11, 1 + 3 * 2 ** -11, 1 + 2 ** -11 + 2 ** -20])).toEqual([
      0x3c00, 0x3c02, 0x3c01,
    ]);
  });

  it('keeps subnormals and flushes values below half the smallest one to zero', () => {
    expect(toBits([2 ** -24, 3 * 2 ** -24, 2 ** -14 - 2 ** -24, 2 ** -26])).toEqual([
      0x0001, 0x0003, 0x03ff, 0,
    ]);
  });

  it('decodes half bits back to the same values', () => {
    const values = [1, -2, 0.5, 65504, 2 ** -24, 0.333251953125, Number.POSITIVE_INFINITY];
    expect([...float16ToFloat32(float32ToFloat16(Float32Array.from(values)))]).toEqual(values);
    expect(Number.isNaN(float16ToFloat32(Uint16Array.of(0x7e00))[0])).toBe(true);
  });
});

describe('listOnnxBackends', () => {
  it('always includes cpu', () => {
    expect(listOnnxBackends()).toContain('cpu');
  });
});
