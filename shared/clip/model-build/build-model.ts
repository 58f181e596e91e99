// The four model kinds clipmod builds itself (no weights can be downloaded where tests run) and the one
// entry point that writes any of them as a model folder.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { buildColorTextGraph, buildColorVisionGraph, colorEmbeddingDim } from './color-model.ts';
import {
  type ModelFolderContent,
  type TowerConfig,
  type WrittenFile,
  writeModelFolder,
} from './model-folder-writer.ts';
import type { OnnxGraph } from './onnx-graph.ts';
import { buildTextGraph, type TextSpec, vitB32Text } from './text-transformer.ts';
import { buildTextureTextGraph, buildTextureVisionGraph, textureEmbeddingDim } from './texture-model.ts';
import type { TransformerSpec } from './transformer-blocks.ts';
import { buildVisionGraph, type VisionSpec, vitB32Vision } from './vit.ts';

export type BuiltModelKind = 'tiny' | 'color' | 'texture' | 'vit-b-32';
export const builtModelKinds: readonly BuiltModelKind[] = ['tiny', 'color', 'texture', 'vit-b-32'];

/** Bump whenever a builder's output changes, so caches keyed on it (test/helpers/models.ts) rebuild. */
export const BUILD_VERSION = 'v1';
export const defaultSeed = 0;

export type BuildOptions = { seed?: number };
export type BuiltModel = { dir: string; files: WrittenFile[] };

const assetsDir = fileURLToPath(new URL('../assets/', import.meta.url));

const tinyShape = { width: 64, layers: 2, heads: 2, mlpWidth: 256, projectionDim: 32 };

/** Tower sizes of the kinds built from the CLIP architecture; `tiny` keeps ViT-B/32's patching and vocabulary. */
export const transformerSpecs: Record<'tiny' | 'vit-b-32', { vision: VisionSpec; text: TextSpec }> = {
  tiny: { vision: { ...vitB32Vision, ...tinyShape }, text: { ...vitB32Text, ...tinyShape } },
  'vit-b-32': { vision: vitB32Vision, text: vitB32Text },
};

export function isBuiltModelKind(value: string): value is BuiltModelKind {
  return (builtModelKinds as readonly string[]).includes(value);
}

/** Writes a complete model folder of `kind` into `outDir` (created if needed; our files overwritten). */
export async function buildModel(
  kind: BuiltModelKind,
  outDir: string,
  options: BuildOptions = {},
): Promise<BuiltModel> {
  const seed = options.seed ?? defaultSeed;
  const content =
    kind === 'color' || kind === 'texture'
      ? await handSetContent(kind, seed)
      : transformerContent(kind, seed);
  const files = await writeModelFolder(outDir, content, assetsDir);
  return { dir: outDir, files };
}

/** The two graphs of a kind, unwritten: for inspection such as counting parameters. */
export function buildTransformerGraphs(
  kind: 'tiny' | 'vit-b-32',
  seed = defaultSeed,
): { vision: OnnxGraph; text: OnnxGraph } {
  const specs = transformerSpecs[kind];
  return { vision: buildVisionGraph(specs.vision, seed), text: buildTextGraph(specs.text, seed) };
}

function transformerContent(kind: 'tiny' | 'vit-b-32', seed: number): ModelFolderContent {
  const specs = transformerSpecs[kind];
  return {
    ...buildTransformerGraphs(kind, seed),
    projectionDim: specs.vision.projectionDim,
    visionConfig: towerConfig(specs.vision),
    textConfig: towerConfig(specs.text),
    settings: settingsFor(kind, seed),
  };
}

/** `color` and `texture`: hand-set towers without a transformer, colour words on the text side. */
async function handSetContent(kind: 'color' | 'texture', seed: number): Promise<ModelFolderContent> {
  const vocab = await readVocabulary();
  const tokenIdOf = (word: string) => {
    const id = vocab[`${word}</w>`];
    if (id === undefined) throw new Error(`colour word ${word} is not a single CLIP token`);
    return id;
  };
  const dim = kind === 'color' ? colorEmbeddingDim : textureEmbeddingDim;
  // These models have no transformer; their "towers" are one hand-set layer wide.
  const flat = {
    hidden_size: dim,
    num_hidden_layers: 0,
    num_attention_heads: 1,
    intermediate_size: 0,
  };
  const isColor = kind === 'color';
  return {
    vision: isColor ? buildColorVisionGraph(224) : buildTextureVisionGraph(seed),
    text: (isColor ? buildColorTextGraph : buildTextureTextGraph)(vitB32Text.vocabSize, tokenIdOf),
    projectionDim: dim,
    visionConfig: flat,
    textConfig: flat,
    settings: settingsFor(kind, isColor ? defaultSeed : seed),
  };
}

/** The id names the weights: kind, builder version and, when not the default, the seed. */
function settingsFor(kind: BuiltModelKind, seed: number): ModelFolderContent['settings'] {
  const seedSuffix = seed === defaultSeed ? '' : `-seed${seed}`;
  return {
    id: `clipmod/${kind}-${BUILD_VERSION}${seedSuffix}`,
    logitScale: 100,
    builtKind: kind,
    variant: 'fp32',
  };
}

function towerConfig(spec: TransformerSpec): TowerConfig {
  return {
    hidden_size: spec.width,
    num_hidden_layers: spec.layers,
    num_attention_heads: spec.heads,
    intermediate_size: spec.mlpWidth,
  };
}

async function readVocabulary(): Promise<Record<string, number>> {
  const tokenizer = JSON.parse(await readFile(`${assetsDir}tokenizer.json`, 'utf8')) as {
    model: { vocab: Record<string, number> };
  };
  return tokenizer.model.vocab;
}
