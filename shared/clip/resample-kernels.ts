// The two passes of the Pillow-compatible resampler as WebAssembly SIMD kernels, and the weight layout
// they read. The arithmetic is Pillow's (int32 accumulators from 1<<21, 22-bit fixed-point weights,
// >> 22, clamp to 0..255), so results are bit-identical to it; SIMD does four to eight multiplies per
// instruction and wasm has no bounds checks, which is where the pure-JS resampler spent its time.
import { encodeWasmModule, simd, WasmFunctionWriter } from './wasm-function-writer.ts';

const PRECISION_BITS = 22;
const HALF = 1 << (PRECISION_BITS - 1);
/** Horizontal weights are split as w = high * 2^11 + low (low in 0..2047) so both halves fit int16. */
const SPLIT_BITS = 11;

/** Integer taps for a contiguous range of output pixels along one axis. */
export type AxisCoefficients = {
  /** First source index of each output pixel. */
  starts: Int32Array;
  /** Number of taps of each output pixel (at least one). */
  counts: Int32Array;
  /** Fixed-point weights, `stride` slots per output pixel. */
  weights: Int32Array;
  stride: number;
};

/**
 * Horizontal pass, two taps per step. A swizzle spreads the two taps' pixels into int16 lanes (channel
 * c of tap 0 in lane 2c, of tap 1 in lane 2c+1); `i32x4.dot_i16x8_s` with the taps' weight halves
 * then leaves channel c's partial sums in int32 lane c. Each step reads 8 bytes and each output pixel
 * stores 4, so the source needs slack and the next pixel overwrites the extra bytes.
 */
function horizontalKernel(): WasmFunctionWriter {
  const f = new WasmFunctionWriter(
    'horizontal',
    [
      'src',
      'srcRowBytes',
      'rowCount',
      'pixelBytes',
      'outWidth',
      'starts',
      'pairCounts',
      'weights',
      'strideBytes',
      'out',
      'mask',
    ],
    { i32: ['y', 'x', 's', 'k', 'n', 'row', 'step'], v128: ['high', 'low', 'swizzle', 'pixels'] },
  );
  f.get('mask').simd(simd.v128Load).set('swizzle');
  f.get('pixelBytes').i32(2).mul().set('step');
  f.doWhile(
    () => {
      f.get('src', 'y', 'srcRowBytes').mul().add().set('row');
      f.i32(0).set('x');
      f.doWhile(
        () => {
          f.get('row', 'starts', 'x').i32(4).mul().add().load().get('pixelBytes').mul().add().set('s');
          f.get('pairCounts', 'x').i32(4).mul().add().load().set('n');
          f.get('weights', 'x', 'strideBytes').mul().add().set('k');
          f.i32(0).simd(simd.i32x4Splat).tee('high').set('low');
          f.doWhile(
            () => {
              f.get('s').simd(simd.v128Load64Zero).get('swizzle').simd(simd.i8x16Swizzle).set('pixels');
              f.get('high', 'pixels', 'k').simd(simd.v128Load).simd(simd.i32x4DotI16x8S);
              f.simd(simd.i32x4Add).set('high');
              f.get('low', 'pixels', 'k').i32(16).add().simd(simd.v128Load).simd(simd.i32x4DotI16x8S);
              f.simd(simd.i32x4Add).set('low');
              f.increment('s', 'step').increment('k', 32);
            },
            () => f.decrementNonZero('n'),
          );
          // sum = (high << 11) + low + 1<<21; (sum >> 22) saturated to int16, then uint8, is Pillow's clip8.
          f.get('out', 'high').i32(SPLIT_BITS).simd(simd.i32x4Shl).get('low').simd(simd.i32x4Add);
          f.i32(HALF).simd(simd.i32x4Splat).simd(simd.i32x4Add);
          f.i32(PRECISION_BITS).simd(simd.i32x4ShrS).tee('high').get('high').simd(simd.i16x8NarrowI32x4S);
          f.tee('high').get('high').simd(simd.i8x16NarrowI16x8U).simd(simd.v128Store32Lane, 0);
          f.increment('out', 'pixelBytes').increment('x', 1);
        },
        () => f.lessThan('x', 'outWidth'),
      );
      f.increment('y', 1);
    },
    () => f.lessThan('y', 'rowCount'),
  );
  return f;
}

/**
 * Vertical pass: 16 bytes of an output row at a time, four int32x4 accumulators, Pillow's 32-bit
 * weights splatted. Reads and writes may run up to 15 bytes past a row: the next row rewrites what was
 * overwritten, and the buffers carry slack.
 */
function verticalKernel(): WasmFunctionWriter {
  const f = new WasmFunctionWriter(
    'vertical',
    ['rows', 'rowBytes', 'outHeight', 'starts', 'counts', 'weights', 'strideBytes', 'out'],
    {
      i32: ['y', 'i', 'base', 'kBase', 'count', 's', 'k', 'n'],
      v128: ['a0', 'a1', 'a2', 'a3', 'lo', 'hi', 'w'],
    },
  );
  const accumulate = (acc: string, half: 'lo' | 'hi', extend: number) => {
    f.get(acc, half).simd(extend).get('w').simd(simd.i32x4Mul).simd(simd.i32x4Add).set(acc);
  };
  const shifted = (acc: string) => f.get(acc).i32(PRECISION_BITS).simd(simd.i32x4ShrS);
  f.doWhile(
    () => {
      f.get('rows', 'starts', 'y').i32(4).mul().add().load().get('rowBytes').mul().add().set('base');
      f.get('weights', 'y', 'strideBytes').mul().add().set('kBase');
      f.get('counts', 'y').i32(4).mul().add().load().set('count');
      f.i32(0).set('i');
      f.doWhile(
        () => {
          f.i32(HALF).simd(simd.i32x4Splat).tee('a0').tee('a1').tee('a2').set('a3');
          f.get('base', 'i').add().set('s').get('kBase').set('k').get('count').set('n');
          f.doWhile(
            () => {
              f.get('k').simd(simd.v128Load32Splat).set('w');
              // lo: bytes 0..7 widened to int16, hi: bytes 8..15.
              f.get('s').simd(simd.v128Load).tee('hi').simd(simd.i16x8ExtendLowI8x16U).set('lo');
              f.get('hi').simd(simd.i16x8ExtendHighI8x16U).set('hi');
              accumulate('a0', 'lo', simd.i32x4ExtendLowI16x8U);
              accumulate('a1', 'lo', simd.i32x4ExtendHighI16x8U);
              accumulate('a2', 'hi', simd.i32x4ExtendLowI16x8U);
              accumulate('a3', 'hi', simd.i32x4ExtendHighI16x8U);
              f.increment('s', 'rowBytes').increment('k', 4);
            },
            () => f.decrementNonZero('n'),
          );
          f.get('out', 'i').add();
          shifted('a0');
          shifted('a1');
          f.simd(simd.i16x8NarrowI32x4S);
          shifted('a2');
          shifted('a3');
          f.simd(simd.i16x8NarrowI32x4S).simd(simd.i8x16NarrowI16x8U).simd(simd.v128Store);
          f.increment('i', 16);
        },
        () => f.lessThan('i', 'rowBytes'),
      );
      f.increment('out', 'rowBytes').increment('y', 1);
    },
    () => f.lessThan('y', 'outHeight'),
  );
  return f;
}

/** The module: exported `memory`, `horizontal` and `vertical`. */
export function encodeResampleKernels(): Uint8Array {
  return encodeWasmModule([horizontalKernel(), verticalKernel()], 1);
}

/** Horizontal taps in the kernel's layout: per output pixel, pairs of taps as two int16x8 vectors. */
export type PairedTaps = {
  /** Per tap pair: the high halves (lanes 2c, 2c+1 = taps 0 and 1, every c), then the low halves. */
  weights: Int16Array;
  /** Tap pairs per output pixel; an odd tap count gets a zero-weight partner. */
  pairCounts: Int32Array;
  /** Bytes between two output pixels' weights. */
  strideBytes: number;
};

export function pairTaps(axis: AxisCoefficients): PairedTaps {
  const pairStride = Math.ceil(axis.stride / 2);
  const outputs = axis.starts.length;
  const weights = new Int16Array(outputs * pairStride * 16);
  const pairCounts = new Int32Array(outputs);
  for (let x = 0; x < outputs; x++) {
    const taps = axis.counts[x]!;
    pairCounts[x] = Math.ceil(taps / 2);
    for (let pair = 0; pair < pairCounts[x]!; pair++) {
      const first = axis.weights[x * axis.stride + 2 * pair]!;
      const second = 2 * pair + 1 < taps ? axis.weights[x * axis.stride + 2 * pair + 1]! : 0;
      const at = (x * pairStride + pair) * 16;
      for (let lane = 0; lane < 8; lane += 2) {
        weights[at + lane] = first >> SPLIT_BITS;
        weights[at + lane + 1] = second >> SPLIT_BITS;
        weights[at + 8 + lane] = first & ((1 << SPLIT_BITS) - 1);
        weights[at + 8 + lane + 1] = second & ((1 << SPLIT_BITS) - 1);
      }
    }
  }
  return { weights, pairCounts, strideBytes: pairStride * 32 };
}

/**
 * The swizzle that turns two adjacent pixels of `pixelBytes` bytes into int16 lanes: lane 2c holds
 * channel c of the first pixel, lane 2c+1 of the second; 0x80 (out of range) yields the zero high bytes.
 */
export function tapSwizzle(pixelBytes: number): Uint8Array {
  const mask = new Uint8Array(16).fill(0x80);
  for (let channel = 0; channel < Math.min(pixelBytes, 4); channel++) {
    mask[4 * channel] = channel;
    mask[4 * channel + 2] = pixelBytes + channel;
  }
  return mask;
}
