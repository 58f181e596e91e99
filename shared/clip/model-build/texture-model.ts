// The `texture` model: an image tower under which near-duplicates stay near, for tests of the
// known-bad bank and image search. The `color` model only sees the mean colour, so any two red images
// collide; this one sees a coarse layout. The image is pooled to an 8×8 thumbnail per channel, its
// overall brightness removed, and projected by a fixed random matrix. Resizing, JPEG re-encoding and a
// 90 % crop barely move an 8×8 thumbnail; mirroring is absorbed by summing each cell with its mirror
// cell inside the projection, so a picture and its mirror embed identically. Different layouts land far
// apart, as random projections keep distances (Johnson–Lindenstrauss).
// The text tower is the colour model's (colour words, one dimension each) padded with zeros: the model
// exists for image-to-image similarity, not for meaningful text scores.
import { buildColorTextGraph } from './color-model.ts';
import { int, ints, OnnxGraph } from './onnx-graph.ts';
import { normalValues } from './weight-init.ts';

/** Thumbnail side: 224 / 28. Coarse enough that a 90 % crop moves each cell by a fraction of itself. */
const gridSize = 8;
const cellSize = 28;
const featureCount = 3 * gridSize * gridSize;
export const textureEmbeddingDim = 64;

/** pixel_values [N,3,224,224] -> image_embeds [N,64]. */
export function buildTextureVisionGraph(seed: number): OnnxGraph {
  const graph = new OnnxGraph('clipmod_texture_vision');
  const pixels = graph.addInput('pixel_values', 'float32', ['batch_size', 3, 224, 224]);
  const pooled = graph.op('AveragePool', [pixels], {
    kernel_shape: ints([cellSize, cellSize]),
    strides: ints([cellSize, cellSize]),
  });
  const cells = graph.op('Flatten', [pooled], { axis: int(1) });
  // Brightness shifts all cells together; removing the mean keeps only the layout.
  const mean = graph.op('ReduceMean', [cells], { axes: ints([1]), keepdims: int(1) });
  const centred = graph.op('Sub', [cells, mean]);
  const projection = graph.addConstant(
    'mirror_symmetric_projection',
    [featureCount, textureEmbeddingDim],
    mirrorSymmetricProjection(seed),
  );
  graph.op('MatMul', [centred, projection], {}, 'image_embeds');
  graph.addOutput('image_embeds', 'float32', ['batch_size', textureEmbeddingDim]);
  return graph;
}

export function buildTextureTextGraph(vocabSize: number, tokenIdOf: (word: string) => number): OnnxGraph {
  return buildColorTextGraph(vocabSize, tokenIdOf, textureEmbeddingDim);
}

/** Row of cell (channel, y, x) equals the row of (channel, y, 7 − x): mirrored images project alike. */
function mirrorSymmetricProjection(seed: number): Float32Array {
  const random = normalValues(featureCount * textureEmbeddingDim, 1 / Math.sqrt(featureCount), seed ^ 0x7e47);
  const values = new Float32Array(featureCount * textureEmbeddingDim);
  for (let feature = 0; feature < featureCount; feature += 1) {
    const x = feature % gridSize;
    const mirror = feature - x + (gridSize - 1 - x);
    for (let column = 0; column < textureEmbeddingDim; column += 1) {
      const index = feature * textureEmbeddingDim + column;
      values[index] = random[index]! + random[mirror * textureEmbeddingDim + column]!;
    }
  }
  return values;
}
