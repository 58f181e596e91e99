// CLIP's vision tower (VisionTransformer in openai/CLIP model.py) as an ONNX graph:
// pixel_values [N, 3, S, S] -> image_embeds [N, D], projected and not normalised.
import { int, ints, OnnxGraph } from './onnx-graph.ts';
import { layerNorm, type TowerContext, type TransformerSpec, transformer } from './transformer-blocks.ts';
import { WeightInit } from './weight-init.ts';

export type VisionSpec = TransformerSpec & { imageSize: number; patchSize: number; projectionDim: number };

/** openai/CLIP ViT-B/32's image encoder. */
export const vitB32Vision: VisionSpec = {
  width: 768,
  layers: 12,
  heads: 12,
  mlpWidth: 3072,
  imageSize: 224,
  patchSize: 32,
  projectionDim: 512,
};

export function buildVisionGraph(spec: VisionSpec, seed: number): OnnxGraph {
  const graph = new OnnxGraph('clip_vision');
  const init = new WeightInit(graph, seed);
  const tower = { graph, init };
  const pixels = graph.addInput('pixel_values', 'float32', ['batch_size', 3, spec.imageSize, spec.imageSize]);
  const tokens = embedPatches(tower, pixels, spec);
  const normed = layerNorm(tower, tokens, 'visual.ln_pre', spec.width);
  const encoded = transformer(tower, normed, 'visual.transformer', spec);
  // Only the class token (position 0) feeds the projection.
  const classIndex = graph.addConstant('class_index', [], BigInt64Array.of(0n));
  const classToken = graph.op('Gather', [encoded, classIndex], { axis: int(1) });
  const pooled = layerNorm(tower, classToken, 'visual.ln_post', spec.width);
  const projection = init.normal('visual.proj', [spec.width, spec.projectionDim], spec.width ** -0.5);
  graph.op('MatMul', [pooled, projection], {}, 'image_embeds');
  graph.addOutput('image_embeds', 'float32', ['batch_size', spec.projectionDim]);
  return graph;
}

/** Conv patchify (no bias), prepend the class embedding, add positional embeddings: [N, 1 + P², W]. */
function embedPatches({ graph, init }: TowerContext, pixels: string, spec: VisionSpec): string {
  const patchesPerSide = spec.imageSize / spec.patchSize;
  const sequenceLength = patchesPerSide * patchesPerSide + 1;
  const scale = spec.width ** -0.5;
  const kernel = [spec.patchSize, spec.patchSize];
  // CLIP leaves conv1 at PyTorch's default init; std fan_in^-0.5 likewise keeps patch features O(1).
  const convStd = (3 * spec.patchSize ** 2) ** -0.5;
  const convWeight = init.normal('visual.conv1.weight', [spec.width, 3, ...kernel], convStd);
  const convolved = graph.op('Conv', [pixels, convWeight], {
    kernel_shape: ints(kernel),
    strides: ints(kernel),
  });
  const flat = graph.op('Reshape', [convolved, graph.addInt64s('patch_grid_shape', [0, spec.width, -1])]);
  const patches = graph.op('Transpose', [flat], { perm: ints([0, 2, 1]) });
  // The class token is broadcast to [N, 1, W]; N is only known at run time.
  const batch = graph.op('Shape', [pixels], { start: int(0), end: int(1) });
  const classShape = graph.op('Concat', [batch, graph.addInt64s('class_token_shape', [1, spec.width])], {
    axis: int(0),
  });
  const classEmbedding = init.normal('visual.class_embedding', [spec.width], scale);
  const classTokens = graph.op('Expand', [classEmbedding, classShape]);
  const sequence = graph.op('Concat', [classTokens, patches], { axis: int(1) });
  const positions = init.normal('visual.positional_embedding', [sequenceLength, spec.width], scale);
  return graph.op('Add', [sequence, positions]);
}
