// Runs the resampling kernels (resample-kernels.ts) on one image: lays the taps and the source window
// out in the kernels' memory, calls the two passes, copies the crop out. One instance per thread is
// kept between calls; wasm memory only grows, so outsized jobs get a throwaway instance instead.
import { type AxisCoefficients, encodeResampleKernels, pairTaps, tapSwizzle } from './resample-kernels.ts';

export type { AxisCoefficients } from './resample-kernels.ts';

/** One resize: the source window the taps reach, and both axes' taps with starts relative to it. */
export type KernelJob = {
  /** Interleaved source pixels, `sourceWidth` per row, `channels` (1..4) bytes each. */
  source: Uint8Array;
  sourceWidth: number;
  channels: number;
  window: { left: number; top: number; width: number; height: number };
  horizontal: AxisCoefficients;
  vertical: AxisCoefficients;
};

type KernelExports = {
  memory: { buffer: ArrayBuffer; grow(pages: number): number };
  horizontal: (...args: number[]) => void;
  vertical: (...args: number[]) => void;
};

// The tsconfig's ES lib declares no WebAssembly API; these are the two constructors used here.
type WebAssemblyApi = {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: unknown };
};
const { Module, Instance } = (globalThis as unknown as { WebAssembly: WebAssemblyApi }).WebAssembly;

const KEPT_MEMORY_BYTES = 64 * 1024 * 1024;
const PAGE_BYTES = 65_536;
/** Covers the kernels' overreach: 8-byte loads, 4-byte stores, 16-byte vectors past a row's end. */
const SLACK_BYTES = 16;

let compiled: object | undefined;
let kept: KernelExports | undefined;

function instantiate(): KernelExports {
  compiled ??= new Module(encodeResampleKernels());
  return new Instance(compiled).exports as KernelExports;
}

function kernelsWithMemory(bytes: number): KernelExports {
  if (bytes > KEPT_MEMORY_BYTES) return withMemory(instantiate(), bytes);
  kept ??= instantiate();
  return withMemory(kept, bytes);
}

function withMemory(kernels: KernelExports, bytes: number): KernelExports {
  const missing = bytes - kernels.memory.buffer.byteLength;
  if (missing > 0) kernels.memory.grow(Math.ceil(missing / PAGE_BYTES));
  return kernels;
}

/** Byte offsets of consecutive regions, each 16-byte aligned and followed by slack. */
function layout(sizes: readonly number[]): { offsets: number[]; totalBytes: number } {
  const offsets: number[] = [];
  let next = 0;
  for (const size of sizes) {
    offsets.push(next);
    next += Math.ceil((size + SLACK_BYTES) / 16) * 16;
  }
  return { offsets, totalBytes: next };
}

/** Copies the window's rows into kernel memory at `offset`, packed (`window.width` pixels per row). */
function copyWindow(job: KernelJob, memory: Uint8Array, offset: number): void {
  const { source, sourceWidth, channels, window } = job;
  const rowBytes = window.width * channels;
  for (let y = 0; y < window.height; y++) {
    const start = ((window.top + y) * sourceWidth + window.left) * channels;
    memory.set(source.subarray(start, start + rowBytes), offset + y * rowBytes);
  }
}

const asBytes = (array: ArrayBufferView) => new Uint8Array(array.buffer, array.byteOffset, array.byteLength);

/** Runs the horizontal then the vertical pass; returns the `vertical.starts.length` output rows. */
export function runKernels(job: KernelJob): Uint8Array {
  const { horizontal, vertical, channels, window } = job;
  const outWidth = horizontal.starts.length;
  const outHeight = vertical.starts.length;
  const rowBytes = outWidth * channels;
  const paired = pairTaps(horizontal);
  const tables = [
    horizontal.starts,
    paired.pairCounts,
    paired.weights,
    tapSwizzle(channels),
    vertical.starts,
    vertical.counts,
    vertical.weights,
  ].map(asBytes);
  const { offsets, totalBytes } = layout([
    ...tables.map((table) => table.byteLength),
    window.width * window.height * channels,
    window.height * rowBytes,
    outHeight * rowBytes,
  ]);
  const kernels = kernelsWithMemory(totalBytes);
  const memory = new Uint8Array(kernels.memory.buffer);
  tables.forEach((table, i) => memory.set(table, offsets[i]));
  const [hStarts, hPairs, hWeights, swizzle, vStarts, vCounts, vWeights, src, rows, out] = offsets as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  copyWindow(job, memory, src);
  const srcRowBytes = window.width * channels;
  kernels.horizontal(
    src,
    srcRowBytes,
    window.height,
    channels,
    outWidth,
    hStarts,
    hPairs,
    hWeights,
    paired.strideBytes,
    rows,
    swizzle,
  );
  kernels.vertical(rows, rowBytes, outHeight, vStarts, vCounts, vWeights, vertical.stride * 4, out);
  return memory.slice(out, out + outHeight * rowBytes);
}
