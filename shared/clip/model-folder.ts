import { readFile, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { z } from 'zod';
import { ClipmodError } from '../errors/index.ts';
import type { OnnxValueInfo } from './onnx-runtime.ts';
import { type PreprocessorConfig, parsePreprocessorConfig } from './preprocessor-config.ts';

export type ModelVariant = 'fp32' | 'fp16' | 'quantized';

export const modelVariants: readonly ModelVariant[] = ['fp32', 'fp16', 'quantized'];

/** Everything the runtime needs from a model folder, read and checked before any session opens. */
export type ModelFolder = {
  folder: string;
  /** Names the weights in caches and results; clipmod.json `id`, else config `_name_or_path`, else the folder name. */
  modelId: string;
  variant: ModelVariant;
  /** Trained CLIP temperature (100 for the released OpenAI models), not config.json's initial value. */
  logitScale: number;
  builtKind: string | undefined;
  embeddingDim: number;
  maxTextTokens: number;
  preprocessorConfig: PreprocessorConfig;
  visionModelPath: string;
  textModelPath: string;
};

const defaultLogitScale = 100;

const configSchema = z.looseObject({
  model_type: z.literal('clip').optional(),
  _name_or_path: z.string().optional(),
  projection_dim: z.number().int().positive(),
  text_config: z.looseObject({ max_position_embeddings: z.number().int().min(2).optional() }).optional(),
});

const settingsSchema = z.looseObject({
  id: z.string().min(1).optional(),
  logitScale: z.number().positive().finite().optional(),
  builtKind: z.string().optional(),
  variant: z.enum(['fp32', 'fp16', 'quantized']).optional(),
});

const tokenizerFiles = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'];

/**
 * Reads and validates a folder in the Hugging Face / Xenova ONNX layout. The graphs themselves are
 * checked once sessions are open (`checkVisionGraph`, `checkTextGraph`); here we only require the files.
 */
export async function loadModelFolder(
  folder: string,
  options: { variant?: ModelVariant } = {},
): Promise<ModelFolder> {
  const root = resolve(folder);
  const config = parseWith(configSchema, 'config.json', await readJsonFile(root, 'config.json'));
  const rawSettings = await readJsonFile(root, 'clipmod.json', { isOptional: true });
  const settings = parseWith(settingsSchema, 'clipmod.json', rawSettings ?? {});
  const preprocessorConfig = parsePreprocessorConfig(await readJsonFile(root, 'preprocessor_config.json'));
  for (const file of tokenizerFiles) await readJsonFile(root, file);
  const variant = options.variant ?? settings.variant ?? 'fp32';
  const visionModelPath = await requireFile(root, onnxFileName('vision_model', variant));
  const textModelPath = await requireFile(root, onnxFileName('text_model', variant));
  return {
    folder: root,
    modelId: settings.id ?? (config._name_or_path || basename(root)),
    variant,
    logitScale: settings.logitScale ?? defaultLogitScale,
    builtKind: settings.builtKind,
    embeddingDim: config.projection_dim,
    maxTextTokens: config.text_config?.max_position_embeddings ?? 77,
    preprocessorConfig,
    visionModelPath,
    textModelPath,
  };
}

export function onnxFileName(graph: 'vision_model' | 'text_model', variant: ModelVariant): string {
  const suffix = variant === 'fp32' ? '' : `_${variant}`;
  return join('onnx', `${graph}${suffix}.onnx`);
}

export function modelInvalid(file: string, message: string, cause?: unknown): ClipmodError {
  return new ClipmodError('model_invalid', `${file}: ${message}`, { details: { file }, cause });
}

async function readJsonFile(root: string, file: string, options: { isOptional?: boolean } = {}) {
  let text: string;
  try {
    text = await readFile(join(root, file), 'utf8');
  } catch (error) {
    if (options.isOptional && (error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw modelInvalid(file, `cannot read it from ${root} (${(error as Error).message})`, error);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw modelInvalid(file, `expected JSON, found unparseable text (${(error as Error).message})`, error);
  }
}

async function requireFile(root: string, file: string): Promise<string> {
  const path = join(root, file);
  const info = await stat(path).catch(() => undefined);
  if (info === undefined || !info.isFile())
    throw modelInvalid(file, `expected a file in ${root}, found none`);
  return path;
}

function parseWith<T>(schema: z.ZodType<T>, file: string, value: unknown): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => `${issue.path.join('.') || '(root)'} ${issue.message}`);
  throw modelInvalid(file, `unexpected content: ${problems.join('; ')}`);
}

/** One declared dimension: a fixed size, a dynamic batch axis, or anything. */
type DimContract = number | 'batch' | 'any';

type ValueContract = { name: string; elementTypes: readonly string[]; dims: readonly DimContract[] };

export type VisionGraphExpectation = {
  height: number;
  width: number;
  embeddingDim: number;
  variant: ModelVariant;
};

export type TextGraphExpectation = { embeddingDim: number; maxTextTokens: number; variant: ModelVariant };

export type CheckedVisionGraph = { pixelType: 'float32' | 'float16' };

export type CheckedTextGraph = {
  /** Set when the export fixed the sequence length; every batch must then be padded to it. */
  staticLength: number | undefined;
  hasAttentionMask: boolean;
};

/** Refuses a vision graph that does not take pixel_values [N,3,H,W] and give image_embeds [N,D]. */
export function checkVisionGraph(
  file: string,
  inputs: readonly OnnxValueInfo[],
  outputs: readonly OnnxValueInfo[],
  expect: VisionGraphExpectation,
): CheckedVisionGraph {
  const floats = floatTypes(expect.variant);
  const pixels: ValueContract = {
    name: 'pixel_values',
    elementTypes: floats,
    dims: ['batch', 3, expect.height, expect.width],
  };
  const found = checkValue(file, 'input', inputs, pixels);
  refuseExtraInputs(file, inputs, [pixels]);
  checkValue(file, 'output', outputs, {
    name: 'image_embeds',
    elementTypes: floats,
    dims: ['batch', expect.embeddingDim],
  });
  return { pixelType: found.elementType === 'float16' ? 'float16' : 'float32' };
}

/** Refuses a text graph that does not take input_ids [N,L] (+ attention_mask) and give text_embeds [N,D]. */
export function checkTextGraph(
  file: string,
  inputs: readonly OnnxValueInfo[],
  outputs: readonly OnnxValueInfo[],
  expect: TextGraphExpectation,
): CheckedTextGraph {
  const ids: ValueContract = { name: 'input_ids', elementTypes: ['int64'], dims: ['batch', 'any'] };
  const mask: ValueContract = { name: 'attention_mask', elementTypes: ['int64'], dims: ['batch', 'any'] };
  const found = checkValue(file, 'input', inputs, ids);
  const hasAttentionMask = inputs.some((value) => value.name === mask.name);
  if (hasAttentionMask) checkValue(file, 'input', inputs, mask);
  refuseExtraInputs(file, inputs, [ids, mask]);
  const floats = floatTypes(expect.variant);
  checkValue(file, 'output', outputs, {
    name: 'text_embeds',
    elementTypes: floats,
    dims: ['batch', expect.embeddingDim],
  });
  const length = found.shape?.[1];
  if (typeof length === 'number' && length !== expect.maxTextTokens) {
    throw modelInvalid(file, `expected input_ids length ${expect.maxTextTokens} or dynamic, found ${length}`);
  }
  return { staticLength: typeof length === 'number' ? length : undefined, hasAttentionMask };
}

/** fp16 exports may keep float32 at their edges or not; both are accepted and converted at run time. */
function floatTypes(variant: ModelVariant): readonly string[] {
  return variant === 'fp16' ? ['float32', 'float16'] : ['float32'];
}

function checkValue(
  file: string,
  kind: 'input' | 'output',
  values: readonly OnnxValueInfo[],
  contract: ValueContract,
): OnnxValueInfo {
  const value = values.find((candidate) => candidate.name === contract.name);
  const expected = `expected ${kind} '${contract.name}' ${contract.elementTypes.join('|')} [${contract.dims.join(',')}]`;
  if (value === undefined || !value.isTensor) {
    throw modelInvalid(
      file,
      `${expected}, found ${kind}s ${values.map(describeValue).join(', ') || '(none)'}`,
    );
  }
  const typeOk = value.elementType === undefined || contract.elementTypes.includes(value.elementType);
  if (!typeOk || !shapeMatches(value.shape, contract.dims)) {
    throw modelInvalid(file, `${expected}, found ${describeValue(value)}`);
  }
  return value;
}

function shapeMatches(shape: OnnxValueInfo['shape'], dims: readonly DimContract[]): boolean {
  if (shape === undefined) return true;
  if (shape.length !== dims.length) return false;
  return dims.every((dim, axis) => {
    const actual = shape[axis];
    // A fixed batch size would silently break batching; any other symbolic axis is checked when run.
    if (dim === 'batch') return typeof actual === 'string';
    if (dim === 'any') return true;
    return typeof actual === 'string' || actual === dim;
  });
}

function refuseExtraInputs(
  file: string,
  inputs: readonly OnnxValueInfo[],
  known: readonly ValueContract[],
): void {
  const extra = inputs.filter((value) => !known.some((contract) => contract.name === value.name));
  if (extra.length > 0) {
    throw modelInvalid(
      file,
      `expected inputs ${known.map((contract) => `'${contract.name}'`).join(' and ')} only, found also ${extra.map(describeValue).join(', ')}`,
    );
  }
}

function describeValue(value: OnnxValueInfo): string {
  const shape = value.shape === undefined ? '' : ` [${value.shape.join(',')}]`;
  return `'${value.name}' ${value.elementType ?? (value.isTensor ? 'tensor' : 'non-tensor')}${shape}`;
}
