import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTransformerGraphs, transformerSpecs } from '../../shared/clip/model-build/index.ts';
import type { OnnxGraph } from '../../shared/clip/model-build/onnx-graph.ts';
import { createOnnxSession, type OnnxSession } from '../../shared/clip/onnx-runtime.ts';
import { builtModel } from '../helpers/models.ts';

// A straightforward, loop-by-loop CLIP forward pass written from openai/CLIP model.py, run on the
// tiny model's own weights. If the ONNX graphs split heads, mask, pool or patchify differently from
// CLIP, the embeddings disagree.

type Weights = (name: string) => Float32Array;

function weightsOf(graph: OnnxGraph): Weights {
  const byName = new Map(graph.initializers.map((tensor) => [tensor.name, tensor]));
  return (name) => {
    const tensor = byName.get(name);
    if (tensor === undefined) throw new Error(`no weight ${name}`);
    return tensor.produce() as Float32Array;
  };
}

/** x [rows, inner] · w [inner, outputs] (+ b). */
function linear(x: Float32Array, rows: number, w: Float32Array, outputs: number, b?: Float32Array) {
  const inner = x.length / rows;
  const out = new Float32Array(rows * outputs);
  for (let r = 0; r < rows; r += 1) {
    for (let o = 0; o < outputs; o += 1) {
      let sum = b?.[o] ?? 0;
      for (let i = 0; i < inner; i += 1) sum += x[r * inner + i]! * w[i * outputs + o]!;
      out[r * outputs + o] = sum;
    }
  }
  return out;
}

function layerNorm(x: Float32Array, rows: number, gain: Float32Array, bias: Float32Array) {
  const width = gain.length;
  const out = new Float32Array(x.length);
  for (let r = 0; r < rows; r += 1) {
    const row = x.subarray(r * width, (r + 1) * width);
    const mean = row.reduce((sum, value) => sum + value, 0) / width;
    const variance = row.reduce((sum, value) => sum + (value - mean) ** 2, 0) / width;
    for (let i = 0; i < width; i += 1) {
      out[r * width + i] = ((row[i]! - mean) / Math.sqrt(variance + 1e-5)) * gain[i]! + bias[i]!;
    }
  }
  return out;
}

function attention(
  x: Float32Array,
  rows: number,
  w: Weights,
  prefix: string,
  heads: number,
  isCausal: boolean,
) {
  const width = x.length / rows;
  const headWidth = width / heads;
  const project = (name: string) =>
    linear(x, rows, w(`${prefix}.${name}.weight`), width, w(`${prefix}.${name}.bias`));
  const [q, k, v] = [project('q_proj'), project('k_proj'), project('v_proj')];
  const context = new Float32Array(rows * width);
  for (let h = 0; h < heads; h += 1) {
    for (let i = 0; i < rows; i += 1) {
      const visible = isCausal ? i + 1 : rows;
      const scores = Array.from({ length: visible }, (_, j) => {
        let dot = 0;
        for (let d = 0; d < headWidth; d += 1)
          dot += q[i * width + h * headWidth + d]! * k[j * width + h * headWidth + d]!;
        return dot / Math.sqrt(headWidth);
      });
      const top = Math.max(...scores);
      const exps = scores.map((score) => Math.exp(score - top));
      const total = exps.reduce((sum, value) => sum + value, 0);
      for (let d = 0; d < headWidth; d += 1) {
        const mixed = exps.reduce((sum, e, j) => sum + (e / total) * v[j * width + h * headWidth + d]!, 0);
        context[i * width + h * headWidth + d] = mixed;
      }
    }
  }
  return linear(context, rows, w(`${prefix}.out_proj.weight`), width, w(`${prefix}.out_proj.bias`));
}

function transformer(
  x: Float32Array,
  rows: number,
  w: Weights,
  prefix: string,
  heads: number,
  isCausal: boolean,
) {
  const spec = transformerSpecs.tiny.text;
  let hidden = x;
  for (let layer = 0; layer < spec.layers; layer += 1) {
    const p = `${prefix}.resblocks.${layer}`;
    const ln1 = layerNorm(hidden, rows, w(`${p}.ln_1.weight`), w(`${p}.ln_1.bias`));
    const attended = attention(ln1, rows, w, `${p}.attn`, heads, isCausal);
    hidden = hidden.map((value, index) => value + attended[index]!);
    const ln2 = layerNorm(hidden, rows, w(`${p}.ln_2.weight`), w(`${p}.ln_2.bias`));
    const fc = linear(ln2, rows, w(`${p}.mlp.c_fc.weight`), spec.mlpWidth, w(`${p}.mlp.c_fc.bias`));
    const gelu = fc.map((value) => value / (1 + Math.exp(-1.702 * value)));
    const projected = linear(gelu, rows, w(`${p}.mlp.c_proj.weight`), spec.width, w(`${p}.mlp.c_proj.bias`));
    hidden = hidden.map((value, index) => value + projected[index]!);
  }
  return hidden;
}

function referenceText(ids: number[], w: Weights): Float32Array {
  const { width, heads, projectionDim } = transformerSpecs.tiny.text;
  const [tokens, positions] = [w('token_embedding.weight'), w('positional_embedding')];
  const x = new Float32Array(ids.length * width);
  ids.forEach((id, row) => {
    for (let i = 0; i < width; i += 1)
      x[row * width + i] = tokens[id * width + i]! + positions[row * width + i]!;
  });
  const normed = layerNorm(
    transformer(x, ids.length, w, 'transformer', heads, true),
    ids.length,
    w('ln_final.weight'),
    w('ln_final.bias'),
  );
  const eosRow = ids.indexOf(Math.max(...ids));
  return linear(
    normed.subarray(eosRow * width, (eosRow + 1) * width),
    1,
    w('text_projection'),
    projectionDim,
  );
}

function referenceVision(image: Float32Array, w: Weights): Float32Array {
  const { width, heads, patchSize, imageSize, projectionDim } = transformerSpecs.tiny.vision;
  const side = imageSize / patchSize;
  const rows = side * side + 1;
  const [conv, classEmbedding, positions] = [
    w('visual.conv1.weight'),
    w('visual.class_embedding'),
    w('visual.positional_embedding'),
  ];
  const x = new Float32Array(rows * width);
  x.set(classEmbedding);
  for (let patch = 0; patch < side * side; patch += 1) {
    const [top, left] = [Math.floor(patch / side) * patchSize, (patch % side) * patchSize];
    for (let o = 0; o < width; o += 1) {
      let sum = 0;
      for (let c = 0; c < 3; c += 1) {
        for (let dy = 0; dy < patchSize; dy += 1) {
          for (let dx = 0; dx < patchSize; dx += 1) {
            const pixel = image[(c * imageSize + top + dy) * imageSize + left + dx]!;
            sum += conv[((o * 3 + c) * patchSize + dy) * patchSize + dx]! * pixel;
          }
        }
      }
      x[(patch + 1) * width + o] = sum;
    }
  }
  const embedded = x.map((value, index) => value + positions[index]!);
  const pre = layerNorm(embedded, rows, w('visual.ln_pre.weight'), w('visual.ln_pre.bias'));
  const encoded = transformer(pre, rows, w, 'visual.transformer', heads, false);
  const cls = layerNorm(encoded.subarray(0, width), 1, w('visual.ln_post.weight'), w('visual.ln_post.bias'));
  return linear(cls, 1, w('visual.proj'), projectionDim);
}

let sessions: { vision: OnnxSession; text: OnnxSession };
const graphs = buildTransformerGraphs('tiny');

beforeAll(async () => {
  const dir = await builtModel('tiny');
  const cpu = { executionProviders: ['cpu'] } as const;
  sessions = {
    vision: await createOnnxSession(join(dir, 'onnx', 'vision_model.onnx'), cpu),
    text: await createOnnxSession(join(dir, 'onnx', 'text_model.onnx'), cpu),
  };
});

afterAll(async () => {
  await Promise.all([sessions?.vision.close(), sessions?.text.close()]);
});

function expectClose(actual: Float32Array, expected: Float32Array): void {
  const scale = Math.max(...expected.map(Math.abs));
  const worst = Math.max(...actual.map((value, index) => Math.abs(value - expected[index]!)));
  expect(scale).toBeGreaterThan(0.1);
  expect(worst / scale).toBeLessThan(1e-4);
}

describe('tiny model against a plain CLIP forward pass', () => {
  it('computes text_embeds like CLIP encode_text (causal attention, pooled at the first EOS)', async () => {
    const ids = [49406, 320, 736, 3360, 2867, 49407, 49407];
    const feeds = {
      input_ids: { elementType: 'int64', data: BigInt64Array.from(ids, BigInt), dims: [1, ids.length] },
    } as const;
    const actual = (await sessions.text.run(feeds, ['text_embeds'])).text_embeds!.data as Float32Array;
    expectClose(actual, referenceText(ids, weightsOf(graphs.text)));
  });

  it('computes image_embeds like CLIP encode_image (patchify, class token, ln_post, projection)', async () => {
    const image = Float32Array.from({ length: 3 * 224 * 224 }, (_, index) => Math.cos(index * 0.013) * 1.5);
    const feeds = { pixel_values: { elementType: 'float32', data: image, dims: [1, 3, 224, 224] } } as const;
    const actual = (await sessions.vision.run(feeds, ['image_embeds'])).image_embeds!.data as Float32Array;
    expectClose(actual, referenceVision(image, weightsOf(graphs.vision)));
  });
});
