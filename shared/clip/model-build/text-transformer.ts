// CLIP's text tower (encode_text in openai/CLIP model.py) as an ONNX graph:
// input_ids [N, L] (L <= 77) -> text_embeds [N, D], pooled at the first EOS, projected, not normalised.
import { int, OnnxGraph } from './onnx-graph.ts';
import { layerNorm, type TransformerSpec, transformer } from './transformer-blocks.ts';
import { WeightInit } from './weight-init.ts';

export type TextSpec = TransformerSpec & { vocabSize: number; contextLength: number; projectionDim: number };

/** openai/CLIP ViT-B/32's text encoder. */
export const vitB32Text: TextSpec = {
  width: 512,
  layers: 12,
  heads: 8,
  mlpWidth: 2048,
  vocabSize: 49408,
  contextLength: 77,
  projectionDim: 512,
};

export function buildTextGraph(spec: TextSpec, seed: number): OnnxGraph {
  const graph = new OnnxGraph('clip_text');
  const init = new WeightInit(graph, seed);
  const tower = { graph, init };
  const ids = graph.addInput('input_ids', 'int64', ['batch_size', 'sequence_length']);
  const tokenEmbedding = init.normal('token_embedding.weight', [spec.vocabSize, spec.width], 0.02);
  const tokens = graph.op('Gather', [tokenEmbedding, ids], { axis: int(0) });
  // Positional embeddings and the causal mask are stored for 77 positions and cut to the actual L.
  const length = graph.op('Shape', [ids], { start: int(1), end: int(2) });
  const positionTable = init.normal('positional_embedding', [spec.contextLength, spec.width], 0.01);
  const positions = graph.op('Slice', [
    positionTable,
    graph.addInt64s('zero', [0]),
    length,
    graph.addInt64s('axis_0', [0]),
  ]);
  const embedded = graph.op('Add', [tokens, positions]);
  const mask = causalMask(graph, spec.contextLength, length);
  const encoded = transformer(tower, embedded, 'transformer', spec, mask);
  const normed = layerNorm(tower, encoded, 'ln_final', spec.width);
  const pooled = poolAtFirstEos(graph, ids, normed);
  const projection = init.normal('text_projection', [spec.width, spec.projectionDim], spec.width ** -0.5);
  graph.op('MatMul', [pooled, projection], {}, 'text_embeds');
  graph.addOutput('text_embeds', 'float32', ['batch_size', spec.projectionDim]);
  return graph;
}

/** [L, L] additive mask: 0 on and below the diagonal, -inf above, so a token sees only its past. */
function causalMask(graph: OnnxGraph, contextLength: number, length: string): string {
  const values = new Float32Array(contextLength * contextLength);
  for (let row = 0; row < contextLength; row += 1) {
    values.fill(Number.NEGATIVE_INFINITY, row * contextLength + row + 1, (row + 1) * contextLength);
  }
  const table = graph.addConstant('causal_mask', [contextLength, contextLength], values);
  const ends = graph.op('Concat', [length, length], { axis: int(0) });
  return graph.op('Slice', [
    table,
    graph.addInt64s('zeros', [0, 0]),
    ends,
    graph.addInt64s('axes_0_1', [0, 1]),
  ]);
}

/**
 * Selects each row's hidden state at its first EOS. EOS (49407) is the largest id, so ArgMax finds it,
 * and ArgMax returns the first maximum, so EOS padding after it is ignored. The ids are cast to int32
 * first because onnxruntime's CPU ArgMax has no int64 kernel (Hugging Face's exports do the same).
 */
function poolAtFirstEos(graph: OnnxGraph, ids: string, hidden: string): string {
  const ids32 = graph.op('Cast', [ids], { to: int(6) });
  const eosIndex = graph.op('ArgMax', [ids32], { axis: int(1), keepdims: int(1) });
  return graph.op('GatherND', [hidden, eosIndex], { batch_dims: int(1) });
}
