import { describe, expect, it } from 'vitest';
import { buildTransformerGraphs, transformerSpecs } from '../../shared/clip/model-build/index.ts';
import type { OnnxGraph } from '../../shared/clip/model-build/onnx-graph.ts';
import { encodeModel } from '../../shared/clip/model-build/onnx-model-encoder.ts';

// Weights are produced lazily at write time, so these graphs cost nothing until serialised: the
// architecture of the full 151 M-parameter model can be checked in milliseconds.
const { vision, text } = buildTransformerGraphs('vit-b-32');

const countOps = (graph: OnnxGraph, opType: string) =>
  graph.nodes.filter((node) => node.opType === opType).length;

describe('vit-b-32 architecture', () => {
  it('has the published parameter counts of openai/CLIP ViT-B/32', () => {
    // openai/CLIP ViT-B/32: visual 87,849,216; text side 63,428,096; plus logit_scale = 151,277,313.
    expect(vision.parameterCount()).toBe(87_849_216);
    expect(text.parameterCount()).toBe(63_428_096);
    expect(vision.parameterCount() + text.parameterCount() + 1).toBe(151_277_313);
  });

  it('stores the weight shapes of the reference checkpoint', () => {
    const dims = (graph: OnnxGraph, name: string) =>
      graph.initializers.find((tensor) => tensor.name === name)?.dims;
    expect(dims(vision, 'visual.conv1.weight')).toEqual([768, 3, 32, 32]);
    expect(dims(vision, 'visual.positional_embedding')).toEqual([50, 768]);
    expect(dims(vision, 'visual.proj')).toEqual([768, 512]);
    expect(dims(vision, 'visual.transformer.resblocks.11.mlp.c_fc.weight')).toEqual([768, 3072]);
    expect(dims(text, 'token_embedding.weight')).toEqual([49408, 512]);
    expect(dims(text, 'positional_embedding')).toEqual([77, 512]);
    expect(dims(text, 'transformer.resblocks.11.mlp.c_proj.weight')).toEqual([2048, 512]);
    expect(dims(text, 'text_projection')).toEqual([512, 512]);
  });

  it('runs 12 pre-LN attention blocks per tower with QuickGELU', () => {
    for (const graph of [vision, text]) {
      expect(countOps(graph, 'Softmax')).toBe(12);
      expect(countOps(graph, 'Sigmoid')).toBe(12);
    }
    // ln_1 and ln_2 per block, plus ln_pre and ln_post (vision) or ln_final (text).
    expect(countOps(vision, 'LayerNormalization')).toBe(26);
    expect(countOps(text, 'LayerNormalization')).toBe(25);
    expect(countOps(vision, 'Conv')).toBe(1);
    expect(countOps(text, 'ArgMax')).toBe(1);
  });

  it('declares dynamic batch (and text length) with CLIP ViT-B/32 sizes', () => {
    expect(vision.inputs).toEqual([
      { name: 'pixel_values', elementType: 'float32', dims: ['batch_size', 3, 224, 224] },
    ]);
    expect(vision.outputs).toEqual([
      { name: 'image_embeds', elementType: 'float32', dims: ['batch_size', 512] },
    ]);
    expect(text.inputs).toEqual([
      { name: 'input_ids', elementType: 'int64', dims: ['batch_size', 'sequence_length'] },
    ]);
    expect(text.outputs).toEqual([
      { name: 'text_embeds', elementType: 'float32', dims: ['batch_size', 512] },
    ]);
  });

  it('serialises to float32 weights plus a small graph (sizes known before any weight exists)', () => {
    for (const graph of [vision, text]) {
      const bytes = encodeModel(graph, { producerName: 'clipmod-test', producerVersion: '0' }).byteLength;
      const weightBytes = 4 * graph.parameterCount();
      expect(bytes).toBeGreaterThan(weightBytes);
      // Graph structure, shape constants and the 77x77 causal mask stay well under a megabyte.
      expect(bytes - weightBytes).toBeLessThan(1024 * 1024);
    }
  });

  it('builds tiny from the same code with small dimensions', () => {
    const tiny = buildTransformerGraphs('tiny');
    expect(transformerSpecs.tiny.vision).toMatchObject({
      width: 64,
      layers: 2,
      patchSize: 32,
      imageSize: 224,
    });
    expect(countOps(tiny.vision, 'Softmax')).toBe(2);
    expect(tiny.text.nodes.map((node) => node.opType)).toEqual(
      expect.arrayContaining(['Gather', 'Slice', 'ArgMax', 'GatherND']),
    );
  });
});
