import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { colorEmbeddingDim } from '../../shared/clip/model-build/index.ts';
import { createOnnxSession, type OnnxSession, type OnnxTensor } from '../../shared/clip/onnx-runtime.ts';
import { builtModel } from '../helpers/models.ts';

const mean = [0.48145466, 0.4578275, 0.40821073];
const std = [0.26862954, 0.26130258, 0.27577711];
const eos = 49407;

/** Flat colours as a user would make them (CSS names), with the word that should win. */
const flatColors: { word: string; rgb: [number, number, number] }[] = [
  { word: 'red', rgb: [255, 0, 0] },
  { word: 'green', rgb: [0, 128, 0] },
  { word: 'green', rgb: [0, 255, 0] },
  { word: 'blue', rgb: [0, 0, 255] },
  { word: 'yellow', rgb: [255, 255, 0] },
  { word: 'black', rgb: [0, 0, 0] },
  { word: 'white', rgb: [255, 255, 255] },
  { word: 'orange', rgb: [255, 165, 0] },
  { word: 'purple', rgb: [128, 0, 128] },
  { word: 'pink', rgb: [255, 192, 203] },
  { word: 'gray', rgb: [128, 128, 128] },
];
const colorWords = ['red', 'green', 'blue', 'yellow', 'black', 'white', 'orange', 'purple', 'pink', 'gray'];

let modelDir: string;
let vision: OnnxSession;
let text: OnnxSession;
let tokenizer: Tokenizer;

beforeAll(async () => {
  modelDir = await builtModel('color');
  const cpu = { executionProviders: ['cpu'] } as const;
  vision = await createOnnxSession(join(modelDir, 'onnx', 'vision_model.onnx'), cpu);
  text = await createOnnxSession(join(modelDir, 'onnx', 'text_model.onnx'), cpu);
  const readJson = async (file: string) => JSON.parse(await readFile(join(modelDir, file), 'utf8'));
  tokenizer = new Tokenizer(await readJson('tokenizer.json'), await readJson('tokenizer_config.json'));
});

afterAll(async () => {
  await Promise.all([vision?.close(), text?.close()]);
});

/** A [3,224,224] tensor of one colour, normalised as CLIPImageProcessor does. */
function flatImage(rgb: readonly number[]): Float32Array {
  const plane = 224 * 224;
  const pixels = new Float32Array(3 * plane);
  for (let channel = 0; channel < 3; channel += 1) {
    const value = (rgb[channel]! / 255 - mean[channel]!) / std[channel]!;
    pixels.fill(value, channel * plane, (channel + 1) * plane);
  }
  return pixels;
}

async function imageEmbeddings(images: Float32Array[]): Promise<Float32Array[]> {
  const batch = new Float32Array(images.length * images[0]!.length);
  for (const [index, image] of images.entries()) batch.set(image, index * image.length);
  const feeds = {
    pixel_values: { elementType: 'float32', data: batch, dims: [images.length, 3, 224, 224] },
  } as const;
  return rows((await vision.run(feeds, ['image_embeds'])).image_embeds!, images.length);
}

async function textEmbeddings(idRows: number[][], padId = eos): Promise<Float32Array[]> {
  const length = Math.max(...idRows.map((ids) => ids.length));
  const padded = idRows.flatMap((ids) => [...ids, ...Array<number>(length - ids.length).fill(padId)]);
  const feeds = {
    input_ids: {
      elementType: 'int64',
      data: BigInt64Array.from(padded, BigInt),
      dims: [idRows.length, length],
    },
  } as const;
  return rows((await text.run(feeds, ['text_embeds'])).text_embeds!, idRows.length);
}

function rows(tensor: OnnxTensor, count: number): Float32Array[] {
  const data = tensor.data as Float32Array;
  const width = data.length / count;
  return Array.from({ length: count }, (_, index) => data.slice(index * width, (index + 1) * width));
}

function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let normA = 0;
  let normB = 0;
  a.forEach((value, index) => {
    dot += value * b[index]!;
    normA += value * value;
    normB += b[index]! * b[index]!;
  });
  return dot / Math.sqrt(normA * normB);
}

/** Zero-shot probabilities at CLIP's logit scale of 100. */
function softmaxAt100(image: Float32Array, labels: Float32Array[]): number[] {
  const logits = labels.map((label) => 100 * cosine(image, label));
  const top = Math.max(...logits);
  const exps = logits.map((logit) => Math.exp(logit - top));
  const total = exps.reduce((sum, value) => sum + value, 0);
  return exps.map((value) => value / total);
}

describe('color model', () => {
  it('scores a flat red image as "a red image" with p > 0.9 against the other colours', async () => {
    const [red] = await imageEmbeddings([flatImage([255, 0, 0])]);
    const prompts = await textEmbeddings(colorWords.map((word) => tokenizer.encode(`a ${word} image`).ids));
    const probabilities = softmaxAt100(red!, prompts);
    expect(probabilities[colorWords.indexOf('red')]).toBeGreaterThan(0.9);
  });

  it.each(flatColors)('picks "$word" for flat rgb($rgb) with p > 0.9', async ({ word, rgb }) => {
    const [image] = await imageEmbeddings([flatImage(rgb)]);
    const prompts = await textEmbeddings(
      colorWords.map((candidate) => tokenizer.encode(`a ${candidate} image`).ids),
    );
    const probabilities = softmaxAt100(image!, prompts);
    expect(probabilities[colorWords.indexOf(word)]).toBeGreaterThan(0.9);
  });

  it('treats "grey" and "gray" as the same colour', async () => {
    const [gray, grey] = await textEmbeddings([tokenizer.encode('gray').ids, tokenizer.encode('grey').ids]);
    expect(Array.from(grey!)).toEqual(Array.from(gray!));
  });

  it('embeds a batch of images exactly as it embeds them one by one', async () => {
    const images = flatColors.slice(0, 4).map((color) => flatImage(color.rgb));
    const batched = await imageEmbeddings(images);
    for (const [index, image] of images.entries()) {
      const [single] = await imageEmbeddings([image]);
      expect(Array.from(batched[index]!)).toEqual(Array.from(single!));
    }
  });

  it('gives the same text embedding whether padding is EOS (Hugging Face) or 0 (openai)', async () => {
    const short = tokenizer.encode('a blue image').ids;
    const long = tokenizer.encode('a very long prompt that forces padding of the blue one').ids;
    const [withEos] = await textEmbeddings([short, long], eos);
    const [withZero] = await textEmbeddings([short, long], 0);
    const [alone] = await textEmbeddings([short]);
    expect(Array.from(withZero!)).toEqual(Array.from(withEos!));
    expect(Array.from(alone!)).toEqual(Array.from(withEos!));
  });

  it('never returns a zero vector, even for prompts and images with no colour match', async () => {
    const [prompt] = await textEmbeddings([tokenizer.encode('a photo of a cat').ids]);
    const [image] = await imageEmbeddings([flatImage([64, 32, 200])]);
    for (const embedding of [prompt!, image!]) {
      expect(embedding).toHaveLength(colorEmbeddingDim);
      expect(Math.hypot(...embedding)).toBeGreaterThan(0.05);
    }
  });

  it('writes clipmod.json and config.json that describe the colour model', async () => {
    const settings = JSON.parse(await readFile(join(modelDir, 'clipmod.json'), 'utf8'));
    const config = JSON.parse(await readFile(join(modelDir, 'config.json'), 'utf8'));
    expect(settings).toMatchObject({ id: 'clipmod/color-v1', builtKind: 'color', logitScale: 100 });
    expect(config.projection_dim).toBe(colorEmbeddingDim);
    expect(vision.outputs.map((output) => output.name)).toEqual(['image_embeds']);
    expect(text.inputs.map((input) => input.name)).toEqual(['input_ids']);
  });
});
