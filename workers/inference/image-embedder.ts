import {
  type ClipModel,
  type ImageInfo,
  type ImageLimits,
  normalizeInto,
  type PreprocessMode,
  preprocessToCrop,
  probeImage,
  sampleFrameIndexes,
} from '../../shared/clip/index.ts';
import { MicroBatcher } from './micro-batcher.ts';

// Image bytes → unit embeddings, one per sampled frame. Each job decodes on its own (sharp's threads
// and the resampler overlap the model run of the batch before); the uint8 crops meet in the
// micro-batcher, which normalises them straight into one batch tensor and makes one ONNX call.

export type ImageEmbedderOptions = {
  model: ClipModel;
  maxBatchSize: number;
  maxWaitMs: number;
  mode: PreprocessMode;
  orientation: 'raw' | 'exif';
  maxFrames: number;
  limits: Partial<ImageLimits>;
  onBatch?(size: number, durationMs: number): void;
  /** Probe, decode and resize of one image (every sampled frame) took durationMs. */
  onPreprocess?(durationMs: number): void;
};

export type ImageEmbedding = {
  info: ImageInfo;
  frameIndexes: number[];
  /** [frameIndexes.length, dim] unit rows. */
  embeddings: Float32Array;
  preprocessMs: number;
  inferenceMs: number;
};

export class ImageEmbedder {
  readonly #options: ImageEmbedderOptions;
  readonly #batcher: MicroBatcher<Uint8Array, { embedding: Float32Array; inferenceMs: number }>;

  constructor(options: ImageEmbedderOptions) {
    this.#options = options;
    const { model } = options;
    this.#batcher = new MicroBatcher({
      maxBatchSize: options.maxBatchSize,
      maxWaitMs: options.maxWaitMs,
      ...(options.onBatch ? { onBatch: options.onBatch } : {}),
      runBatch: async (crops) => {
        const startedAt = performance.now();
        const pixels = new Float32Array(crops.length * model.pixelsPerImage);
        crops.forEach((rgb, i) =>
          normalizeInto(rgb, pixels, i * model.pixelsPerImage, model.preprocessorConfig),
        );
        const rows = await model.encodeImages(pixels, crops.length);
        const inferenceMs = performance.now() - startedAt;
        const dim = model.embeddingDim;
        return crops.map((_, i) => ({ embedding: rows.subarray(i * dim, (i + 1) * dim), inferenceMs }));
      },
    });
  }

  get pending(): number {
    return this.#batcher.size;
  }

  async embed(bytes: Uint8Array): Promise<ImageEmbedding> {
    const { model, limits, mode, orientation } = this.#options;
    const startedAt = performance.now();
    const info = await probeImage(bytes, limits);
    const frameIndexes = sampleFrameIndexes(info.frames, this.#options.maxFrames);
    const crops = await Promise.all(
      frameIndexes.map((page) =>
        preprocessToCrop(bytes, { mode, orientation, limits, info, page, config: model.preprocessorConfig }),
      ),
    );
    const preprocessMs = performance.now() - startedAt;
    this.#options.onPreprocess?.(preprocessMs);
    const results = await Promise.all(crops.map((crop) => this.#batcher.submit(crop.rgb)));
    const dim = model.embeddingDim;
    const embeddings = new Float32Array(results.length * dim);
    results.forEach((result, i) => embeddings.set(result.embedding, i * dim));
    const inferenceMs = Math.max(...results.map((r) => r.inferenceMs));
    return { info, frameIndexes, embeddings, preprocessMs, inferenceMs };
  }

  drain(): Promise<void> {
    return this.#batcher.drain();
  }
}
