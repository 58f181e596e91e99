import { copyFile, cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ClipModel, loadClipModel } from '../../shared/clip/clip-model.ts';
import { builtModel } from '../helpers/models.ts';

/** Deterministic pseudo-random pixels in roughly the normalised CLIP range. */
function randomPixels(length: number, seed: number): Float32Array {
  const pixels = new Float32Array(length);
  let state = seed >>> 0;
  for (let index = 0; index < length; index += 1) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    pixels[index] = (state / 2 ** 32) * 4 - 2;
  }
  return pixels;
}

function rowNorms(rows: Float32Array, dim: number): number[] {
  const norms: number[] = [];
  for (let offset = 0; offset < rows.length; offset += dim) {
    norms.push(Math.hypot(...rows.subarray(offset, offset + dim)));
  }
  return norms;
}

function maxAbsDifference(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  return a.reduce((max, value, index) => Math.max(max, Math.abs(value - b[index]!)), 0);
}

const texts = ['a red image', 'a photo of a cat sitting on a very long red sofa in the sun.', 'blue', ''];

describe.each(['tiny', 'color'] as const)('the %s model', (kind) => {
  let model: ClipModel;

  beforeAll(async () => {
    model = await loadClipModel(await builtModel(kind), { provider: 'cpu', intraOpThreads: 1 });
  });

  afterAll(async () => {
    await model.close();
  });

  it('reports its settings from the folder', () => {
    expect(model.modelId).toBe(`clipmod/${kind}-v1`);
    expect(model.provider).toBe('cpu');
    expect(model.variant).toBe('fp32');
    expect(model.logitScale).toBe(100);
    expect(model.pixelsPerImage).toBe(3 * 224 * 224);
    expect(model.embeddingDim).toBeGreaterThan(1);
  });

  it('encodes a batch of images exactly as it encodes each image alone, with unit rows', async () => {
    const count = 3;
    const pixels = randomPixels(count * model.pixelsPerImage, 7);
    const batch = await model.encodeImages(pixels, count);
    expect(batch).toHaveLength(count * model.embeddingDim);
    for (let image = 0; image < count; image += 1) {
      const alone = pixels.slice(image * model.pixelsPerImage, (image + 1) * model.pixelsPerImage);
      const single = await model.encodeImages(alone, 1);
      const row = batch.subarray(image * model.embeddingDim, (image + 1) * model.embeddingDim);
      expect(maxAbsDifference(row, single)).toBeLessThan(1e-5);
    }
    for (const norm of rowNorms(batch, model.embeddingDim)) expect(norm).toBeCloseTo(1, 5);
  });

  it('encodes only the first count images of a larger buffer, deterministically', async () => {
    const pixels = randomPixels(4 * model.pixelsPerImage, 11);
    const first = await model.encodeImages(pixels, 2);
    const exact = await model.encodeImages(pixels.slice(0, 2 * model.pixelsPerImage), 2);
    expect([...first]).toEqual([...exact]);
    expect([...(await model.encodeImages(pixels, 2))]).toEqual([...first]);
  });

  it('refuses a pixel buffer too short for the count', async () => {
    await expect(model.encodeImages(new Float32Array(model.pixelsPerImage), 2)).rejects.toThrow(RangeError);
  });

  it('encodes a batch of texts of different lengths as it encodes each text alone, with unit rows', async () => {
    const batch = await model.encodeTexts(texts);
    expect(batch).toHaveLength(texts.length * model.embeddingDim);
    for (const [index, text] of texts.entries()) {
      const single = await model.encodeTexts([text]);
      const row = batch.subarray(index * model.embeddingDim, (index + 1) * model.embeddingDim);
      expect(maxAbsDifference(row, single)).toBeLessThan(1e-5);
    }
    for (const norm of rowNorms(batch, model.embeddingDim)) expect(norm).toBeCloseTo(1, 5);
    expect([...(await model.encodeTexts(texts))]).toEqual([...batch]);
  });

  it('gives different texts different embeddings', async () => {
    const rows = await model.encodeTexts(['a red image', 'a green image']);
    const dim = model.embeddingDim;
    expect(maxAbsDifference(rows.subarray(0, dim), rows.subarray(dim))).toBeGreaterThan(1e-3);
  });

  it('returns empty results for empty batches without running the graphs', async () => {
    expect(await model.encodeImages(new Float32Array(0), 0)).toHaveLength(0);
    expect(await model.encodeTexts([])).toHaveLength(0);
  });
});

describe('model lifecycle', () => {
  it('warms up, closes twice without error and refuses work once closed', async () => {
    const model = await loadClipModel(await builtModel('tiny'), { provider: 'cpu' });
    await model.warmUp();
    await model.close();
    await model.close();
    await expect(model.encodeTexts(['a cat'])).rejects.toThrow(/closed/);
  });

  it('logs the provider it started on', async () => {
    const lines: { fields: object; message: string }[] = [];
    const logger = {
      info: (fields: object, message: string) => lines.push({ fields, message }),
      warn: (fields: object, message: string) => lines.push({ fields, message }),
    };
    const model = await loadClipModel(await builtModel('tiny'), { provider: 'auto', logger });
    await model.close();
    const loaded = lines.find((line) => line.message === 'clip model loaded');
    expect(loaded?.fields).toMatchObject({ modelId: 'clipmod/tiny-v1', provider: model.provider });
  });
});

describe('loadClipModel refusals', () => {
  let folder = '';

  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), 'clipmod-bad-model-'));
  });

  afterAll(async () => {
    await rm(folder, { recursive: true, force: true });
  });

  async function copyOfTiny(name: string): Promise<string> {
    const target = join(folder, name);
    await cp(await builtModel('tiny'), target, { recursive: true });
    return target;
  }

  it('refuses a text graph in place of the vision graph, naming the file and the input found', async () => {
    const target = await copyOfTiny('swapped');
    await copyFile(join(target, 'onnx', 'text_model.onnx'), join(target, 'onnx', 'vision_model.onnx'));
    await expect(loadClipModel(target, { provider: 'cpu' })).rejects.toThrow(
      expect.objectContaining({
        code: 'model_invalid',
        message: expect.stringMatching(
          /^onnx\/vision_model\.onnx: expected input 'pixel_values'.*found inputs 'input_ids' int64/,
        ),
      }),
    );
  });

  it('refuses a file that is not an ONNX graph', async () => {
    const target = await copyOfTiny('garbage');
    await writeFile(join(target, 'onnx', 'text_model.onnx'), 'not a protobuf');
    await expect(loadClipModel(target, { provider: 'cpu' })).rejects.toThrow(
      expect.objectContaining({
        code: 'model_invalid',
        message: expect.stringMatching(/^onnx\/text_model\.onnx: onnxruntime cannot load it/),
      }),
    );
  });

  it('refuses a config.json whose projection_dim disagrees with the graphs', async () => {
    const target = await copyOfTiny('wrong-dim');
    const config = { model_type: 'clip', projection_dim: 512, text_config: { max_position_embeddings: 77 } };
    await writeFile(join(target, 'config.json'), JSON.stringify(config));
    await expect(loadClipModel(target, { provider: 'cpu' })).rejects.toThrow(
      expect.objectContaining({ code: 'model_invalid', message: expect.stringContaining("'image_embeds'") }),
    );
  });
});
