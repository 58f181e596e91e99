// The `color` model: hand-set weights so that the embeddings mean something testable. The image tower
// encodes how close the image's mean colour is to each named colour; the text tower encodes which
// colour words the prompt contains. A flat red image therefore scores "a red image" highest.
// Same inputs and outputs as a real CLIP export, so it runs through the ordinary pipeline.
import { int, ints, OnnxGraph } from './onnx-graph.ts';

/** Named colours and their prototypes in [0, 1] RGB; the order fixes the embedding dimensions. */
export const colorPrototypes: readonly {
  words: readonly string[];
  rgb: readonly [number, number, number];
}[] = [
  { words: ['red'], rgb: [1, 0, 0] },
  // Between CSS green (0,128,0) and lime (0,255,0), so a flat image of either reads as green.
  { words: ['green'], rgb: [0, 0.75, 0] },
  { words: ['blue'], rgb: [0, 0, 1] },
  { words: ['yellow'], rgb: [1, 1, 0] },
  { words: ['black'], rgb: [0, 0, 0] },
  { words: ['white'], rgb: [1, 1, 1] },
  { words: ['orange'], rgb: [1, 0.6, 0] },
  { words: ['purple'], rgb: [0.5, 0, 0.5] },
  { words: ['pink'], rgb: [1, 0.75, 0.8] },
  { words: ['gray', 'grey'], rgb: [0.5, 0.5, 0.5] },
];

/** Colour dimensions plus one constant dimension, so that no embedding is ever the zero vector. */
export const colorEmbeddingDim = colorPrototypes.length + 1;

/** Sharpness of the colour match: features are exp(-β·|rgb − prototype|²). */
const beta = 20;
/** Size of the constant dimension: small, so it never outweighs a colour match. */
const constantDimValue = 0.1;

const openaiMean = [0.48145466, 0.4578275, 0.40821073];
const openaiStd = [0.26862954, 0.26130258, 0.27577711];

/** pixel_values [N,3,H,W] (OpenAI-normalised) -> image_embeds [N, K+1]. */
export function buildColorVisionGraph(imageSize: number): OnnxGraph {
  const graph = new OnnxGraph('clipmod_color_vision');
  const pixels = graph.addInput('pixel_values', 'float32', ['batch_size', 3, imageSize, imageSize]);
  // Undo the preprocessor's normalisation to get back to [0, 1] RGB, then average over the image.
  const std = graph.addConstant('std', [1, 3, 1, 1], Float32Array.from(openaiStd));
  const mean = graph.addConstant('mean', [1, 3, 1, 1], Float32Array.from(openaiMean));
  const rgbImage = graph.op('Add', [graph.op('Mul', [pixels, std]), mean]);
  const rgb = graph.op('Flatten', [graph.op('GlobalAveragePool', [rgbImage])], { axis: int(1) });
  const prototypes = graph.addConstant(
    'prototypes',
    [colorPrototypes.length, 3],
    Float32Array.from(colorPrototypes.flatMap((color) => color.rgb)),
  );
  const expanded = graph.op('Unsqueeze', [rgb, graph.addInt64s('axis_1', [1])]);
  const difference = graph.op('Sub', [expanded, prototypes]);
  const squaredDistance = graph.op('ReduceSumSquare', [difference], { axes: ints([2]), keepdims: int(0) });
  const negBeta = graph.addConstant('neg_beta', [], Float32Array.of(-beta));
  const similarity = graph.op('Exp', [graph.op('Mul', [squaredDistance, negBeta])]);
  graph.op(
    'Add',
    [graph.op('MatMul', [similarity, embedColorsMatrix(graph)]), constantBias(graph)],
    {},
    'image_embeds',
  );
  graph.addOutput('image_embeds', 'float32', ['batch_size', colorEmbeddingDim]);
  return graph;
}

/**
 * input_ids [N, L] -> text_embeds [N, K+1]: the sum over tokens of a table row that is one-hot on the
 * colour for colour words and zero for every other token. BOS, EOS and padding (49407, or 0 as
 * openai pads) map to zero rows, so padding needs no mask and never changes the result.
 * A wider `embeddingDim` pads with zero dimensions (the texture model reuses this tower).
 */
export function buildColorTextGraph(
  vocabSize: number,
  tokenIdOf: (word: string) => number,
  embeddingDim = colorEmbeddingDim,
): OnnxGraph {
  const graph = new OnnxGraph('clipmod_color_text');
  const ids = graph.addInput('input_ids', 'int64', ['batch_size', 'sequence_length']);
  const table = new Float32Array(vocabSize * embeddingDim);
  colorPrototypes.forEach((color, dimension) => {
    for (const word of color.words) table[tokenIdOf(word) * embeddingDim + dimension] = 1;
  });
  const rows = graph.op('Gather', [graph.addConstant('color_words', [vocabSize, embeddingDim], table), ids], {
    axis: int(0),
  });
  const summed = graph.op('ReduceSum', [rows, graph.addInt64s('sequence_axis', [1])], { keepdims: int(0) });
  graph.op('Add', [summed, constantBias(graph, embeddingDim)], {}, 'text_embeds');
  graph.addOutput('text_embeds', 'float32', ['batch_size', embeddingDim]);
  return graph;
}

/** [K, K+1]: identity on the colour dimensions, zero on the constant one. */
function embedColorsMatrix(graph: OnnxGraph): string {
  const count = colorPrototypes.length;
  const values = new Float32Array(count * colorEmbeddingDim);
  for (let index = 0; index < count; index += 1) values[index * colorEmbeddingDim + index] = 1;
  return graph.addConstant('color_to_embedding', [count, colorEmbeddingDim], values);
}

/** `embeddingDim` wider than the colour model's pads with zeros (the texture model's text tower). */
function constantBias(graph: OnnxGraph, embeddingDim = colorEmbeddingDim): string {
  const values = new Float32Array(embeddingDim);
  values[colorPrototypes.length] = constantDimValue;
  return graph.addConstant('constant_dimension', [embeddingDim], values);
}
