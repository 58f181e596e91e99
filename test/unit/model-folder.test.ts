import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkTextGraph, checkVisionGraph, loadModelFolder } from '../../shared/clip/model-folder.ts';
import type { OnnxValueInfo } from '../../shared/clip/onnx-runtime.ts';

const assetsDir = fileURLToPath(new URL('../../shared/clip/assets/', import.meta.url));

const config = {
  model_type: 'clip',
  projection_dim: 32,
  logit_scale_init_value: 2.6592,
  text_config: { max_position_embeddings: 77, vocab_size: 49408, eos_token_id: 49407 },
  vision_config: { image_size: 224, patch_size: 32 },
};
const preprocessorConfig = { crop_size: 224, size: { shortest_edge: 224 }, resample: 3 };

let folder = '';

/** A folder in the contract's layout; the .onnx files are placeholders, since no session opens here. */
async function writeFolder(dir: string): Promise<void> {
  await mkdir(join(dir, 'onnx'), { recursive: true });
  await writeFile(join(dir, 'config.json'), JSON.stringify(config));
  await writeFile(join(dir, 'preprocessor_config.json'), JSON.stringify(preprocessorConfig));
  await writeFile(join(dir, 'clipmod.json'), JSON.stringify({ id: 'test/tiny', logitScale: 50 }));
  for (const file of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json']) {
    await copyFile(join(assetsDir, file), join(dir, file));
  }
  for (const file of [
    'vision_model.onnx',
    'text_model.onnx',
    'vision_model_quantized.onnx',
    'text_model_quantized.onnx',
  ]) {
    await writeFile(join(dir, 'onnx', file), 'placeholder');
  }
}

beforeEach(async () => {
  folder = await mkdtemp(join(tmpdir(), 'clipmod-model-folder-'));
  await writeFolder(folder);
});

afterEach(async () => {
  await rm(folder, { recursive: true, force: true });
});

const refusal = (file: string, text: string) =>
  expect.objectContaining({
    code: 'model_invalid',
    details: { file },
    message: expect.stringMatching(new RegExp(`^${file.replaceAll('.', '\\.')}: .*${text}`)),
  });

describe('loadModelFolder', () => {
  it('reads the settings, dimensions and file paths of a complete folder', async () => {
    const model = await loadModelFolder(folder);
    expect(model).toMatchObject({
      modelId: 'test/tiny',
      variant: 'fp32',
      logitScale: 50,
      embeddingDim: 32,
      maxTextTokens: 77,
      visionModelPath: join(folder, 'onnx', 'vision_model.onnx'),
      textModelPath: join(folder, 'onnx', 'text_model.onnx'),
    });
    expect(model.preprocessorConfig.output).toEqual({ width: 224, height: 224 });
  });

  it('defaults to logit scale 100 and the folder name when clipmod.json is absent', async () => {
    await rm(join(folder, 'clipmod.json'));
    const model = await loadModelFolder(folder);
    expect(model.logitScale).toBe(100);
    expect(model.modelId).toBe(basename(folder));
  });

  it('prefers the variant option over clipmod.json and picks that variant’s files', async () => {
    await writeFile(join(folder, 'clipmod.json'), JSON.stringify({ variant: 'fp16' }));
    const model = await loadModelFolder(folder, { variant: 'quantized' });
    expect(model.variant).toBe('quantized');
    expect(model.visionModelPath).toBe(join(folder, 'onnx', 'vision_model_quantized.onnx'));
  });

  it('refuses a folder without config.json, naming the file', async () => {
    await rm(join(folder, 'config.json'));
    await expect(loadModelFolder(folder)).rejects.toThrow(refusal('config.json', 'cannot read'));
  });

  it('refuses unparseable JSON, saying what was found', async () => {
    await writeFile(join(folder, 'config.json'), '{"projection_dim": 32,');
    await expect(loadModelFolder(folder)).rejects.toThrow(refusal('config.json', 'unparseable'));
  });

  it('refuses a config.json without projection_dim', async () => {
    await writeFile(join(folder, 'config.json'), JSON.stringify({ model_type: 'clip' }));
    await expect(loadModelFolder(folder)).rejects.toThrow(refusal('config.json', 'projection_dim'));
  });

  it('refuses a clipmod.json with a non-positive logit scale', async () => {
    await writeFile(join(folder, 'clipmod.json'), JSON.stringify({ logitScale: -1 }));
    await expect(loadModelFolder(folder)).rejects.toThrow(refusal('clipmod.json', 'logitScale'));
  });

  it('refuses a folder missing a tokenizer file', async () => {
    await rm(join(folder, 'special_tokens_map.json'));
    await expect(loadModelFolder(folder)).rejects.toThrow(refusal('special_tokens_map.json', 'cannot read'));
  });

  it('refuses a folder missing the graph of the chosen variant', async () => {
    await expect(loadModelFolder(folder, { variant: 'fp16' })).rejects.toThrow(
      refusal('onnx/vision_model_fp16.onnx', 'expected a file'),
    );
  });

  it('refuses a preprocessor config it cannot honour', async () => {
    await writeFile(join(folder, 'preprocessor_config.json'), JSON.stringify({ resample: 2 }));
    await expect(loadModelFolder(folder)).rejects.toThrow(
      expect.objectContaining({
        code: 'model_invalid',
        message: expect.stringContaining('preprocessor_config.json'),
      }),
    );
  });
});

const tensor = (name: string, elementType: string, shape: (number | string)[]): OnnxValueInfo => ({
  name,
  isTensor: true,
  elementType,
  shape,
});
const visionFile = 'onnx/vision_model.onnx';
const textFile = 'onnx/text_model.onnx';
const vision = { height: 224, width: 224, embeddingDim: 32, variant: 'fp32' } as const;
const text = { embeddingDim: 32, maxTextTokens: 77, variant: 'fp32' } as const;
const pixels = tensor('pixel_values', 'float32', ['batch', 3, 224, 224]);
const imageEmbeds = tensor('image_embeds', 'float32', ['batch', 32]);
const inputIds = tensor('input_ids', 'int64', ['batch', 'sequence']);
const textEmbeds = tensor('text_embeds', 'float32', ['batch', 32]);

describe('checkVisionGraph', () => {
  it('accepts pixel_values [N,3,224,224] -> image_embeds [N,D] with extra outputs', () => {
    const extra = tensor('last_hidden_state', 'float32', ['batch', 50, 64]);
    expect(checkVisionGraph(visionFile, [pixels], [extra, imageEmbeds], vision)).toEqual({
      pixelType: 'float32',
    });
  });

  it('refuses a text graph in the vision slot, naming what it found', () => {
    expect(() => checkVisionGraph(visionFile, [inputIds], [textEmbeds], vision)).toThrow(
      refusal(
        visionFile,
        "expected input 'pixel_values'.*found inputs 'input_ids' int64 \\[batch,sequence\\]",
      ),
    );
  });

  it('refuses a fixed batch size, which would break batching', () => {
    const fixed = tensor('pixel_values', 'float32', [1, 3, 224, 224]);
    expect(() => checkVisionGraph(visionFile, [fixed], [imageEmbeds], vision)).toThrow(
      refusal(visionFile, '\\[1,3,224,224\\]'),
    );
  });

  it('refuses an embedding size other than config.json projection_dim', () => {
    const wide = tensor('image_embeds', 'float32', ['batch', 512]);
    expect(() => checkVisionGraph(visionFile, [pixels], [wide], vision)).toThrow(
      refusal(visionFile, "'image_embeds'"),
    );
  });

  it('refuses float16 pixels unless the fp16 variant was chosen', () => {
    const half = tensor('pixel_values', 'float16', ['batch', 3, 224, 224]);
    expect(() => checkVisionGraph(visionFile, [half], [imageEmbeds], vision)).toThrow(
      refusal(visionFile, 'float16'),
    );
    expect(checkVisionGraph(visionFile, [half], [imageEmbeds], { ...vision, variant: 'fp16' })).toEqual({
      pixelType: 'float16',
    });
  });

  it('refuses an input it would not know how to feed', () => {
    const extra = tensor('pixel_mask', 'int64', ['batch', 224, 224]);
    expect(() => checkVisionGraph(visionFile, [pixels, extra], [imageEmbeds], vision)).toThrow(
      refusal(visionFile, "found also 'pixel_mask'"),
    );
  });
});

describe('checkTextGraph', () => {
  it('accepts a dynamic-length input_ids graph without attention_mask', () => {
    expect(checkTextGraph(textFile, [inputIds], [textEmbeds], text)).toEqual({
      staticLength: undefined,
      hasAttentionMask: false,
    });
  });

  it('notes an attention_mask input and a fixed sequence length of 77', () => {
    const fixed = tensor('input_ids', 'int64', ['batch', 77]);
    const mask = tensor('attention_mask', 'int64', ['batch', 77]);
    expect(checkTextGraph(textFile, [fixed, mask], [textEmbeds], text)).toEqual({
      staticLength: 77,
      hasAttentionMask: true,
    });
  });

  it('refuses a fixed sequence length other than max_position_embeddings', () => {
    const short = tensor('input_ids', 'int64', ['batch', 16]);
    expect(() => checkTextGraph(textFile, [short], [textEmbeds], text)).toThrow(
      refusal(textFile, 'found 16'),
    );
  });

  it('refuses int32 token ids', () => {
    const narrow = tensor('input_ids', 'int32', ['batch', 'sequence']);
    expect(() => checkTextGraph(textFile, [narrow], [textEmbeds], text)).toThrow(refusal(textFile, 'int32'));
  });

  it('refuses a graph without text_embeds, listing the outputs it has', () => {
    const pooled = tensor('pooler_output', 'float32', ['batch', 64]);
    expect(() => checkTextGraph(textFile, [inputIds], [pooled], text)).toThrow(
      refusal(textFile, "found outputs 'pooler_output'"),
    );
  });
});
