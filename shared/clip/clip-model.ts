import { relative } from 'node:path';
import { ClipmodError } from '../errors/index.ts';
import { type ClipTokenizer, loadClipTokenizer } from './clip-tokenizer.ts';
import {
  type ExecutionProviderChoice,
  type ExecutionProviderName,
  openSessionWithFallback,
  type ProviderAttempt,
  type ProviderLogger,
  planExecutionProviders,
  type SessionThreads,
} from './execution-providers.ts';
import {
  type CheckedTextGraph,
  type CheckedVisionGraph,
  checkTextGraph,
  checkVisionGraph,
  loadModelFolder,
  type ModelFolder,
  type ModelVariant,
  modelInvalid,
} from './model-folder.ts';
import {
  float16ToFloat32,
  float32ToFloat16,
  listOnnxBackends,
  type OnnxSession,
  type OnnxTensor,
} from './onnx-runtime.ts';
import type { PreprocessorConfig } from './preprocessor-config.ts';
import { normalizeRows } from './zero-shot.ts';

/** CLIP's `<|endoftext|>`: the text tower pools at its first occurrence, and it doubles as padding. */
const endOfTextId = 49407;

/** Bounds the text tower's activations when a policy expands to thousands of prompts. */
const maxTextBatchSize = 256;

export type ClipModel = {
  /** clipmod.json `id` (suffixed `:fp16` / `:quantized` for those variants): names the weights in caches and results. */
  readonly modelId: string;
  readonly variant: ModelVariant;
  readonly embeddingDim: number;
  readonly logitScale: number;
  readonly provider: ExecutionProviderName;
  readonly preprocessorConfig: PreprocessorConfig;
  /** Floats per preprocessed image (3 × height × width), the stride of `encodeImages`' input. */
  readonly pixelsPerImage: number;
  /** `count` images laid out [count,3,H,W] in `pixels` (which may be longer) → [count, D], unit rows. One ONNX call. */
  encodeImages(pixels: Float32Array, count: number): Promise<Float32Array>;
  /** Texts → [texts.length, D], unit rows. */
  encodeTexts(texts: readonly string[]): Promise<Float32Array>;
  /** Runs one image and one text batch so the first real request does not pay for lazy initialisation. */
  warmUp(): Promise<void>;
  /** Releases both sessions; safe to call twice. */
  close(): Promise<void>;
};

export type LoadClipModelOptions = SessionThreads & {
  /** Overrides clipmod.json `variant`. */
  variant?: ModelVariant;
  /** Default `auto`: TensorRT, then CUDA, then CPU, whichever starts first. */
  provider?: ExecutionProviderChoice;
  logger?: ProviderLogger;
};

type Towers = {
  vision: OnnxSession;
  text: OnnxSession;
  visionGraph: CheckedVisionGraph;
  textGraph: CheckedTextGraph;
  provider: ExecutionProviderName;
};

/** Loads, validates and opens a model folder; any deviation from the contract is `model_invalid`. */
export async function loadClipModel(folder: string, options: LoadClipModelOptions = {}): Promise<ClipModel> {
  const files = await loadModelFolder(folder, { variant: options.variant });
  const tokenizer = await loadTokenizerChecked(files.folder);
  const attempts = planExecutionProviders(options.provider ?? 'auto', listOnnxBackends());
  const { intraOpThreads, interOpThreads, deviceId } = options;
  const towers = await openTowers(
    files,
    attempts,
    { intraOpThreads, interOpThreads, deviceId },
    options.logger,
  );
  options.logger?.info(
    {
      modelId: files.modelId,
      variant: files.variant,
      provider: towers.provider,
      embeddingDim: files.embeddingDim,
    },
    'clip model loaded',
  );
  return new OnnxClipModel(files, tokenizer, towers);
}

async function loadTokenizerChecked(folder: string): Promise<ClipTokenizer> {
  try {
    return await loadClipTokenizer(folder);
  } catch (error) {
    if (error instanceof ClipmodError) throw error;
    throw modelInvalid(
      'tokenizer.json',
      `cannot build a tokenizer from it (${(error as Error).message})`,
      error,
    );
  }
}

async function openTowers(
  files: ModelFolder,
  attempts: readonly ProviderAttempt[],
  threads: SessionThreads,
  logger: ProviderLogger | undefined,
): Promise<Towers> {
  const vision = await openChecked(files, files.visionModelPath, attempts, threads, logger);
  // The text tower goes where the vision tower landed, so both run on the same device.
  const sameProvider = attempts.filter((attempt) => attempt.provider === vision.provider);
  const text = await openChecked(files, files.textModelPath, sameProvider, threads, logger).catch(
    async (error) => {
      await vision.session.close();
      throw error;
    },
  );
  try {
    const [height, width] = imageSize(files);
    const visionFile = relative(files.folder, files.visionModelPath);
    const textFile = relative(files.folder, files.textModelPath);
    const { embeddingDim, variant, maxTextTokens } = files;
    const visionGraph = checkVisionGraph(visionFile, vision.session.inputs, vision.session.outputs, {
      height,
      width,
      embeddingDim,
      variant,
    });
    const textGraph = checkTextGraph(textFile, text.session.inputs, text.session.outputs, {
      embeddingDim,
      maxTextTokens,
      variant,
    });
    return { vision: vision.session, text: text.session, visionGraph, textGraph, provider: vision.provider };
  } catch (error) {
    await Promise.allSettled([vision.session.close(), text.session.close()]);
    throw error;
  }
}

async function openChecked(
  files: ModelFolder,
  path: string,
  attempts: readonly ProviderAttempt[],
  threads: SessionThreads,
  logger: ProviderLogger | undefined,
) {
  try {
    return await openSessionWithFallback(path, attempts, threads, logger);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    const file = relative(files.folder, path);
    if (attempts.some((attempt) => attempt.provider === 'cpu')) {
      throw modelInvalid(file, `onnxruntime cannot load it: ${reason}`, error);
    }
    const provider = attempts[0]?.provider ?? 'none';
    throw new ClipmodError(
      'invalid_config',
      `execution provider ${provider} failed to open ${file}: ${reason}`,
      {
        cause: error,
      },
    );
  }
}

function imageSize(files: ModelFolder): [number, number] {
  const { output } = files.preprocessorConfig;
  return [output.height, output.width];
}

class OnnxClipModel implements ClipModel {
  readonly modelId: string;
  readonly variant: ModelVariant;
  readonly embeddingDim: number;
  readonly logitScale: number;
  readonly provider: ExecutionProviderName;
  readonly preprocessorConfig: PreprocessorConfig;
  readonly pixelsPerImage: number;
  readonly #imageSize: [number, number];
  readonly #tokenizer: ClipTokenizer;
  readonly #towers: Towers;
  #isClosed = false;

  constructor(files: ModelFolder, tokenizer: ClipTokenizer, towers: Towers) {
    this.modelId = files.variant === 'fp32' ? files.modelId : `${files.modelId}:${files.variant}`;
    this.variant = files.variant;
    this.embeddingDim = files.embeddingDim;
    this.logitScale = files.logitScale;
    this.provider = towers.provider;
    this.preprocessorConfig = files.preprocessorConfig;
    this.#imageSize = imageSize(files);
    this.pixelsPerImage = 3 * this.#imageSize[0] * this.#imageSize[1];
    this.#tokenizer = tokenizer;
    this.#towers = towers;
  }

  async encodeImages(pixels: Float32Array, count: number): Promise<Float32Array> {
    this.#assertOpen();
    const length = count * this.pixelsPerImage;
    if (!Number.isInteger(count) || count < 0 || pixels.length < length) {
      throw new RangeError(`encodeImages: ${count} images need ${length} floats, got ${pixels.length}`);
    }
    if (count === 0) return new Float32Array(0);
    // subarray is a view, so the tensor still sits on the caller's buffer.
    const view = pixels.length === length ? pixels : pixels.subarray(0, length);
    const dims = [count, 3, ...this.#imageSize];
    const input: OnnxTensor =
      this.#towers.visionGraph.pixelType === 'float16'
        ? { elementType: 'float16', data: float32ToFloat16(view), dims }
        : { elementType: 'float32', data: view, dims };
    const outputs = await this.#towers.vision.run({ pixel_values: input }, ['image_embeds']);
    return this.#embeddings(outputs.image_embeds, count);
  }

  async encodeTexts(texts: readonly string[]): Promise<Float32Array> {
    this.#assertOpen();
    const out = new Float32Array(texts.length * this.embeddingDim);
    for (let start = 0; start < texts.length; start += maxTextBatchSize) {
      const chunk = texts.slice(start, start + maxTextBatchSize);
      out.set(await this.#encodeTextBatch(chunk), start * this.embeddingDim);
    }
    return out;
  }

  async warmUp(): Promise<void> {
    await this.encodeImages(new Float32Array(this.pixelsPerImage), 1);
    await this.encodeTexts(['a photo of a cat.']);
  }

  async close(): Promise<void> {
    if (this.#isClosed) return;
    this.#isClosed = true;
    await Promise.allSettled([this.#towers.vision.close(), this.#towers.text.close()]);
  }

  async #encodeTextBatch(texts: readonly string[]): Promise<Float32Array> {
    const rows = texts.map((text) => this.#tokenizer.encode(text));
    // Padding to the batch's longest prompt instead of 77 saves most of the text tower's work.
    const length = this.#towers.textGraph.staticLength ?? Math.max(...rows.map((row) => row.length));
    const ids = new BigInt64Array(rows.length * length).fill(BigInt(endOfTextId));
    const mask = new BigInt64Array(rows.length * length);
    rows.forEach((row, index) => {
      ids.set(row.map(BigInt), index * length);
      mask.fill(1n, index * length, index * length + row.length);
    });
    const dims = [rows.length, length];
    const feeds: Record<string, OnnxTensor> = { input_ids: { elementType: 'int64', data: ids, dims } };
    if (this.#towers.textGraph.hasAttentionMask)
      feeds.attention_mask = { elementType: 'int64', data: mask, dims };
    const outputs = await this.#towers.text.run(feeds, ['text_embeds']);
    return this.#embeddings(outputs.text_embeds, rows.length);
  }

  #embeddings(tensor: OnnxTensor | undefined, count: number): Float32Array {
    const dim = this.embeddingDim;
    if (tensor === undefined || tensor.dims[0] !== count || tensor.dims[1] !== dim) {
      throw new Error(
        `model returned embeddings of shape [${tensor?.dims.join(',')}], expected [${count},${dim}]`,
      );
    }
    const rows =
      tensor.data instanceof Uint16Array ? float16ToFloat32(tensor.data) : (tensor.data as Float32Array);
    return normalizeRows(rows, dim);
  }

  #assertOpen(): void {
    if (this.#isClosed) throw new Error(`clip model ${this.modelId} is closed`);
  }
}
