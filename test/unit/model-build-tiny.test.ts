import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildModel } from '../../shared/clip/model-build/index.ts';
import {
  createOnnxSession,
  type OnnxSession,
  type OnnxTensor,
  type OnnxValueInfo,
} from '../../shared/clip/onnx-runtime.ts';
import { builtModel } from '../helpers/models.ts';

const bos = 49406;
const eos = 49407;
const projectionDim = 32;

let modelDir: string;
let vision: OnnxSession;
let text: OnnxSession;
const scratchDirs: string[] = [];

beforeAll(async () => {
  modelDir = await builtModel('tiny');
  const cpu = { executionProviders: ['cpu'] } as const;
  vision = await createOnnxSession(join(modelDir, 'onnx', 'vision_model.onnx'), cpu);
  text = await createOnnxSession(join(modelDir, 'onnx', 'text_model.onnx'), cpu);
});

afterAll(async () => {
  await Promise.all([vision?.close(), text?.close()]);
  await Promise.all(scratchDirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

async function scratchDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'clipmod-model-build-'));
  scratchDirs.push(dir);
  return dir;
}

/** Deterministic pseudo-pixels in the normalised range. */
function pixels(count: number, phase: number): Float32Array {
  return Float32Array.from(
    { length: count * 3 * 224 * 224 },
    (_, index) => 2 * Math.sin(index * 0.37 + phase),
  );
}

async function embedImages(values: Float32Array, count: number): Promise<OnnxTensor> {
  const pixelValues = { elementType: 'float32', data: values, dims: [count, 3, 224, 224] } as const;
  return (await vision.run({ pixel_values: pixelValues }, ['image_embeds'])).image_embeds!;
}

async function embedTexts(idRows: number[][]): Promise<OnnxTensor> {
  const length = idRows[0]!.length;
  const ids = BigInt64Array.from(idRows.flat(), BigInt);
  const inputIds = { elementType: 'int64', data: ids, dims: [idRows.length, length] } as const;
  return (await text.run({ input_ids: inputIds }, ['text_embeds'])).text_embeds!;
}

const names = (values: readonly OnnxValueInfo[]) => values.map((value) => value.name);

function row(tensor: OnnxTensor, index: number): number[] {
  const width = tensor.dims[1]!;
  return Array.from((tensor.data as Float32Array).subarray(index * width, (index + 1) * width));
}

function expectClose(actual: number[], expected: number[]): void {
  expect(actual).toHaveLength(expected.length);
  const worst = Math.max(...actual.map((value, index) => Math.abs(value - expected[index]!)));
  expect(worst).toBeLessThan(1e-4);
}

describe('tiny model graphs', () => {
  it('declares the contract names, types and dynamic batch and length', () => {
    expect(names(vision.inputs)).toEqual(['pixel_values']);
    expect(names(vision.outputs)).toEqual(['image_embeds']);
    expect(names(text.inputs)).toEqual(['input_ids']);
    expect(names(text.outputs)).toEqual(['text_embeds']);
    expect(vision.inputs[0]).toMatchObject({ isTensor: true, shape: ['batch_size', 3, 224, 224] });
    expect(text.inputs[0]).toMatchObject({
      isTensor: true,
      elementType: 'int64',
      shape: ['batch_size', 'sequence_length'],
    });
  });

  it('embeds any batch size to finite [N, 32] vectors, each image independent of the batch', async () => {
    const three = pixels(3, 0);
    const batched = await embedImages(three, 3);
    expect(batched.dims).toEqual([3, projectionDim]);
    expect((batched.data as Float32Array).every(Number.isFinite)).toBe(true);
    const second = await embedImages(three.slice(3 * 224 * 224, 2 * 3 * 224 * 224), 1);
    expectClose(row(second, 0), row(batched, 1));
    expect(row(batched, 0)).not.toEqual(row(batched, 1));
  });

  it('accepts any sequence length up to 77 and pools at the first EOS', async () => {
    const prompt = [bos, 320, 736, 2867, eos];
    const short = await embedTexts([prompt]);
    const full = await embedTexts([[...prompt, ...Array<number>(77 - prompt.length).fill(eos)]]);
    expect(short.dims).toEqual([1, projectionDim]);
    expectClose(row(full, 0), row(short, 0));
  });

  it('ignores whatever follows the first EOS (causal mask), so 0-padding equals EOS-padding', async () => {
    const prompt = [bos, 320, 1901, 2867, eos];
    const embeddings = await embedTexts([
      [...prompt, eos, eos, eos],
      [...prompt, 0, 0, 0],
      [...prompt, 736, 1746, 4481],
    ]);
    expectClose(row(embeddings, 1), row(embeddings, 0));
    expectClose(row(embeddings, 2), row(embeddings, 0));
  });

  it('lets every token before the EOS change the embedding', async () => {
    const embeddings = await embedTexts([
      [bos, 320, 736, 2867, eos],
      [bos, 320, 1901, 2867, eos],
      [bos, 530, 736, 2867, eos],
    ]);
    const [red, green, otherFirstWord] = [0, 1, 2].map((index) => row(embeddings, index));
    expect(green).not.toEqual(red);
    expect(otherFirstWord).not.toEqual(red);
  });
});

describe('tiny model folder', () => {
  it('writes the HF config, preprocessor config, tokenizer files and clipmod.json', async () => {
    const readJson = async (file: string) => JSON.parse(await readFile(join(modelDir, file), 'utf8'));
    const config = await readJson('config.json');
    expect(config).toMatchObject({
      model_type: 'clip',
      projection_dim: projectionDim,
      logit_scale_init_value: 2.6592,
    });
    expect(config.text_config).toMatchObject({
      hidden_size: 64,
      num_hidden_layers: 2,
      vocab_size: 49408,
      eos_token_id: eos,
    });
    expect(config.vision_config).toMatchObject({ hidden_size: 64, image_size: 224, patch_size: 32 });
    expect(await readJson('clipmod.json')).toEqual({
      id: 'clipmod/tiny-v1',
      logitScale: 100,
      builtKind: 'tiny',
      variant: 'fp32',
    });
    expect(await readJson('preprocessor_config.json')).toMatchObject({
      image_std: [0.26862954, 0.26130258, 0.27577711],
    });
    const tokenizerCopy = await readFile(join(modelDir, 'tokenizer.json'));
    const tokenizerAsset = await readFile(
      new URL('../../shared/clip/assets/tokenizer.json', import.meta.url),
    );
    expect(tokenizerCopy.equals(tokenizerAsset)).toBe(true);
  });

  it('is byte-identical when rebuilt with the same seed, and differs with another seed', async () => {
    // The cached folder was built with the default seed; a mismatch here also means a builder changed
    // without a bump of BUILD_VERSION, which would leave stale models in every checkout's cache.
    const [rebuilt, reseeded] = [await scratchDir(), await scratchDir()];
    await buildModel('tiny', rebuilt);
    const built = await buildModel('tiny', reseeded, { seed: 8 });
    for (const file of ['onnx/vision_model.onnx', 'onnx/text_model.onnx']) {
      const [cached, same, other] = await Promise.all(
        [modelDir, rebuilt, reseeded].map((dir) => readFile(join(dir, file))),
      );
      expect(same!.equals(cached!)).toBe(true);
      expect(other!.equals(cached!)).toBe(false);
    }
    expect(built.files.map((file) => file.path)).toContain('onnx/text_model.onnx');
    const settings = JSON.parse(await readFile(join(reseeded, 'clipmod.json'), 'utf8'));
    expect(settings.id).toBe('clipmod/tiny-v1-seed8');
  });
});
