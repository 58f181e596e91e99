// Writes a model folder in the Hugging Face / Xenova ONNX layout that clipmod's runtime loads:
// config.json, preprocessor_config.json, the tokenizer files, clipmod.json and onnx/*.onnx.
import { copyFile, mkdir, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { OPENAI_CLIP_PREPROCESSOR_JSON } from '../preprocessor-config.ts';
import type { OnnxGraph } from './onnx-graph.ts';
import { encodeModel } from './onnx-model-encoder.ts';
import { writeProtoFile } from './protobuf-writer.ts';

/** One tower's sizes as Hugging Face's CLIPTextConfig / CLIPVisionConfig name them. */
export type TowerConfig = {
  hidden_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  intermediate_size: number;
};

export type ModelFolderContent = {
  vision: OnnxGraph;
  text: OnnxGraph;
  projectionDim: number;
  textConfig: TowerConfig;
  visionConfig: TowerConfig;
  /** clipmod.json: our own per-model settings. */
  settings: { id: string; logitScale: number; builtKind: string; variant: 'fp32' };
};

export type WrittenFile = { path: string; sizeBytes: number };

/** The tokenizer files every model folder carries, copied from shared/clip/assets. */
export const tokenizerFiles = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'] as const;

export async function writeModelFolder(
  outDir: string,
  content: ModelFolderContent,
  assetsDir: string,
): Promise<WrittenFile[]> {
  await mkdir(join(outDir, 'onnx'), { recursive: true });
  await writeJson(join(outDir, 'config.json'), clipConfig(content));
  await writeJson(join(outDir, 'preprocessor_config.json'), OPENAI_CLIP_PREPROCESSOR_JSON);
  await writeJson(join(outDir, 'clipmod.json'), content.settings);
  for (const file of tokenizerFiles) await copyFile(join(assetsDir, file), join(outDir, file));
  const producer = { producerName: 'clipmod', producerVersion: content.settings.id };
  await writeOnnx(join(outDir, 'onnx', 'vision_model.onnx'), content.vision, producer);
  await writeOnnx(join(outDir, 'onnx', 'text_model.onnx'), content.text, producer);
  const relativePaths = [
    'config.json',
    'preprocessor_config.json',
    'clipmod.json',
    ...tokenizerFiles,
    'onnx/vision_model.onnx',
    'onnx/text_model.onnx',
  ];
  return Promise.all(
    relativePaths.map(async (path) => ({ path, sizeBytes: (await stat(join(outDir, path))).size })),
  );
}

function clipConfig(content: ModelFolderContent) {
  return {
    architectures: ['CLIPModel'],
    model_type: 'clip',
    projection_dim: content.projectionDim,
    // The initial value ln(1/0.07); the trained scale lives in clipmod.json.
    logit_scale_init_value: 2.6592,
    text_config: {
      ...content.textConfig,
      hidden_act: 'quick_gelu',
      max_position_embeddings: 77,
      vocab_size: 49408,
      bos_token_id: 49406,
      eos_token_id: 49407,
    },
    vision_config: { ...content.visionConfig, hidden_act: 'quick_gelu', image_size: 224, patch_size: 32 },
  };
}

async function writeJson(path: string, value: unknown): Promise<void> {
  await writeFile(path, `${JSON.stringify(value, null, 2)}\n`);
}

/** Writes beside the target and renames, so an interrupted build never leaves a truncated model. */
async function writeOnnx(
  path: string,
  graph: OnnxGraph,
  producer: { producerName: string; producerVersion: string },
) {
  const partial = `${path}.partial`;
  await writeProtoFile(partial, encodeModel(graph, producer));
  await rename(partial, path);
}
