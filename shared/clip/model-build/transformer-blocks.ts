// The pieces both CLIP towers share: LayerNorm, multi-head self-attention and the pre-LN residual
// block with a QuickGELU MLP, written as plain ONNX ops (opset 17) so any runtime can run them.
import { float, int, ints, type OnnxGraph } from './onnx-graph.ts';
import type { WeightInit } from './weight-init.ts';

export type TransformerSpec = { width: number; layers: number; heads: number; mlpWidth: number };

/** The graph being built and the source of its weights, passed together to every block. */
export type TowerContext = { graph: OnnxGraph; init: WeightInit };

export type LinearShape = { inputs: number; outputs: number; std: number; hasBias: boolean };

/** LayerNorm over the last axis with CLIP's epsilon; gain 1 and bias 0 at initialisation. */
export function layerNorm({ graph, init }: TowerContext, x: string, prefix: string, width: number): string {
  const scale = init.filled(`${prefix}.weight`, [width], 1);
  const bias = init.filled(`${prefix}.bias`, [width], 0);
  return graph.op('LayerNormalization', [x, scale, bias], { axis: int(-1), epsilon: float(1e-5) });
}

/** x·W + b, with W stored [in, out] so no transpose is needed at run time. */
export function linear({ graph, init }: TowerContext, x: string, prefix: string, shape: LinearShape): string {
  const weight = init.normal(`${prefix}.weight`, [shape.inputs, shape.outputs], shape.std);
  const product = graph.op('MatMul', [x, weight]);
  if (!shape.hasBias) return product;
  return graph.op('Add', [product, init.filled(`${prefix}.bias`, [shape.outputs], 0)]);
}

/**
 * `spec.layers` pre-LN residual attention blocks, initialised as openai/CLIP initialises its text
 * transformer: attention std width^-0.5, MLP input std (2·width)^-0.5, and output projections scaled
 * down by the depth so the residual stream stays O(1) however many layers there are.
 * `mask` is an additive [S, S] attention mask (the text tower's causal mask) or undefined.
 */
export function transformer(
  tower: TowerContext,
  x: string,
  prefix: string,
  spec: TransformerSpec,
  mask?: string,
) {
  let hidden = x;
  for (let layer = 0; layer < spec.layers; layer += 1) {
    hidden = residualBlock(tower, hidden, `${prefix}.resblocks.${layer}`, spec, mask);
  }
  return hidden;
}

function residualBlock(tower: TowerContext, x: string, prefix: string, spec: TransformerSpec, mask?: string) {
  const { graph } = tower;
  const normedInput = layerNorm(tower, x, `${prefix}.ln_1`, spec.width);
  const afterAttention = graph.op('Add', [
    x,
    selfAttention(tower, normedInput, `${prefix}.attn`, spec, mask),
  ]);
  const normed = layerNorm(tower, afterAttention, `${prefix}.ln_2`, spec.width);
  const fcShape = {
    inputs: spec.width,
    outputs: spec.mlpWidth,
    std: (2 * spec.width) ** -0.5,
    hasBias: true,
  };
  const activated = quickGelu(graph, linear(tower, normed, `${prefix}.mlp.c_fc`, fcShape));
  const projShape = { inputs: spec.mlpWidth, outputs: spec.width, std: outputStd(spec), hasBias: true };
  return graph.op('Add', [afterAttention, linear(tower, activated, `${prefix}.mlp.c_proj`, projShape)]);
}

function outputStd(spec: TransformerSpec): number {
  return spec.width ** -0.5 * (2 * spec.layers) ** -0.5;
}

/** CLIP's activation: x·sigmoid(1.702·x). */
function quickGelu(graph: OnnxGraph, x: string): string {
  const factor = graph.addConstant('quick_gelu_factor', [], Float32Array.of(1.702));
  return graph.op('Mul', [x, graph.op('Sigmoid', [graph.op('Mul', [x, factor])])]);
}

/** Multi-head scaled dot-product self-attention on [N, S, W] with separate q/k/v projections. */
function selfAttention(tower: TowerContext, x: string, prefix: string, spec: TransformerSpec, mask?: string) {
  const { graph } = tower;
  const headWidth = spec.width / spec.heads;
  const square = { inputs: spec.width, outputs: spec.width, std: spec.width ** -0.5, hasBias: true };
  // [N, S, W] -> [N, S, heads, headWidth]; 0 copies the (dynamic) batch and sequence sizes.
  const splitShape = graph.addInt64s('split_heads_shape', [0, 0, spec.heads, headWidth]);
  const heads = (name: string, perm: number[]) => {
    const projected = linear(tower, x, `${prefix}.${name}`, square);
    return graph.op('Transpose', [graph.op('Reshape', [projected, splitShape])], { perm: ints(perm) });
  };
  const query = heads('q_proj', [0, 2, 1, 3]);
  const keyTransposed = heads('k_proj', [0, 2, 3, 1]);
  const value = heads('v_proj', [0, 2, 1, 3]);
  const scale = graph.addConstant('attention_scale', [], Float32Array.of(headWidth ** -0.5));
  const scores = graph.op('MatMul', [graph.op('Mul', [query, scale]), keyTransposed]);
  const masked = mask === undefined ? scores : graph.op('Add', [scores, mask]);
  const weights = graph.op('Softmax', [masked], { axis: int(-1) });
  const context = graph.op('Transpose', [graph.op('MatMul', [weights, value])], { perm: ints([0, 2, 1, 3]) });
  const merged = graph.op('Reshape', [context, graph.addInt64s('merge_heads_shape', [0, 0, spec.width])]);
  return linear(tower, merged, `${prefix}.out_proj`, { ...square, std: outputStd(spec) });
}
