// Seeded, deterministic weights for the built models. Each tensor draws from its own generator, seeded
// from the model seed and the tensor's name, so the bytes of one tensor never depend on how many
// others were generated before it, and tensors can be produced lazily in any order.
import type { OnnxGraph } from './onnx-graph.ts';
import { elementCount } from './onnx-graph.ts';

/** Registers learned parameters on a graph with CLIP-like initialisation. */
export class WeightInit {
  readonly #graph: OnnxGraph;
  readonly #seed: number;

  constructor(graph: OnnxGraph, seed: number) {
    this.#graph = graph;
    this.#seed = seed;
  }

  /** Normally distributed values with mean 0 and standard deviation `std`. */
  normal(name: string, dims: readonly number[], std: number): string {
    const seed = mixSeed(this.#seed, name);
    return this.#graph.addParameter(name, dims, () => normalValues(elementCount(dims), std, seed));
  }

  /** Every element equal to `value` (LayerNorm gains of 1, biases of 0). */
  filled(name: string, dims: readonly number[], value: number): string {
    return this.#graph.addParameter(name, dims, () => new Float32Array(elementCount(dims)).fill(value));
  }
}

/** Fills `count` float32 values from N(0, std²) using Box–Muller on a mulberry32 stream. */
export function normalValues(count: number, std: number, seed: number): Float32Array {
  const values = new Float32Array(count);
  const next = mulberry32(seed);
  for (let index = 0; index < count; index += 2) {
    // 1 - u keeps the logarithm's argument in (0, 1].
    const radius = std * Math.sqrt(-2 * Math.log(1 - next()));
    const angle = 2 * Math.PI * next();
    values[index] = radius * Math.cos(angle);
    if (index + 1 < count) values[index + 1] = radius * Math.sin(angle);
  }
  return values;
}

/** mulberry32: a tiny 32-bit generator, plenty for initial weights; returns floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let mixed = Math.imul(state ^ (state >>> 15), state | 1);
    mixed ^= mixed + Math.imul(mixed ^ (mixed >>> 7), mixed | 61);
    return ((mixed ^ (mixed >>> 14)) >>> 0) / 4294967296;
  };
}

/** FNV-1a over the tensor name, folded with the model seed. */
function mixSeed(seed: number, name: string): number {
  let hash = (0x811c9dc5 ^ seed) >>> 0;
  for (let index = 0; index < name.length; index += 1) {
    hash = Math.imul(hash ^ name.charCodeAt(index), 0x01000193) >>> 0;
  }
  return hash;
}
