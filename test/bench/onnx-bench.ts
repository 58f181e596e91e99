// Image-encoder throughput by batch size, and the raw decode + ONNX loop the service is compared with.
import {
  type ClipModel,
  normalizeInto,
  type PreprocessMode,
  preprocessToCrop,
} from '../../shared/clip/index.ts';
import type { SectionContext } from './bench-report.ts';
import { formatSummary, repeat, type Summary, summarize } from './bench-stats.ts';

export type BatchResult = { batchSize: number; images: number; seconds: number; imagesPerSecond: number };

/** Pixel tensors are prepared once: this measures the model alone. */
export async function benchBatchSizes(
  model: ClipModel,
  images: readonly Uint8Array[],
  batchSizes: readonly number[],
  imagesPerSize: number,
): Promise<BatchResult[]> {
  const per = model.pixelsPerImage;
  const maxBatch = Math.max(...batchSizes);
  const pixels = new Float32Array(maxBatch * per);
  for (let i = 0; i < maxBatch; i++) {
    const crop = await preprocessToCrop(images[i % images.length]!, { config: model.preprocessorConfig });
    normalizeInto(crop.rgb, pixels, i * per, model.preprocessorConfig);
  }
  const results: BatchResult[] = [];
  for (const batchSize of batchSizes) {
    await model.encodeImages(pixels, batchSize); // warm-up: first call at a new shape allocates
    const calls = Math.max(1, Math.ceil(imagesPerSize / batchSize));
    const started = performance.now();
    for (let call = 0; call < calls; call++) await model.encodeImages(pixels, batchSize);
    const seconds = (performance.now() - started) / 1000;
    results.push({
      batchSize,
      images: calls * batchSize,
      seconds,
      imagesPerSecond: (calls * batchSize) / seconds,
    });
  }
  return results;
}

/**
 * What one process does without the service: decode a batch (concurrently), then one ONNX call. The
 * two phases are timed apart, to show where the time goes.
 */
export async function benchRawLoop(
  model: ClipModel,
  images: readonly Uint8Array[],
  batchSize: number,
  totalImages: number,
  mode: PreprocessMode = 'exact',
) {
  const per = model.pixelsPerImage;
  const started = performance.now();
  let done = 0;
  let batches = 0;
  let decodeMs = 0;
  while (done < totalImages) {
    const count = Math.min(batchSize, totalImages - done);
    const pixels = new Float32Array(count * per);
    const decodeStarted = performance.now();
    const crops = await Promise.all(
      Array.from({ length: count }, (_, i) =>
        preprocessToCrop(images[(done + i) % images.length]!, { mode, config: model.preprocessorConfig }),
      ),
    );
    crops.forEach((crop, i) => normalizeInto(crop.rgb, pixels, i * per, model.preprocessorConfig));
    decodeMs += performance.now() - decodeStarted;
    await model.encodeImages(pixels, count);
    done += count;
    batches += 1;
  }
  const elapsedMs = performance.now() - started;
  return {
    images: done,
    seconds: elapsedMs / 1000,
    imagesPerSecond: (done * 1000) / elapsedMs,
    msPerBatch: elapsedMs / batches,
    /** Wall time per image spent preprocessing, and in the model. */
    decodeMsPerImage: decodeMs / done,
    modelMsPerImage: (elapsedMs - decodeMs) / done,
  };
}

export type OnnxFigures = {
  provider: string;
  bestBatchSize: number;
  byBatchSize: { batchSize: number; imagesPerSecond: Summary; ratioToBest: number }[];
};

/** Section 2: image-encoder img/s by batch size (pixels prepared once) ÷ the best batch. */
export async function onnxSection(
  context: SectionContext,
  model: ClipModel,
  images: readonly Uint8Array[],
): Promise<OnnxFigures> {
  const sizes = context.isQuick ? [1, 4, 8] : [1, 2, 4, 8, 16, 32, 64];
  const runs = await repeat(context.runs, () =>
    benchBatchSizes(model, images, sizes, context.isQuick ? 8 : 32),
  );
  const bySize = sizes.map((batchSize) => ({
    batchSize,
    imagesPerSecond: summarize(
      runs.map((run) => run.find((r) => r.batchSize === batchSize)!.imagesPerSecond),
    ),
  }));
  const best = bySize.reduce((a, b) => (b.imagesPerSecond.median > a.imagesPerSecond.median ? b : a));
  const figures: OnnxFigures = {
    provider: model.provider,
    bestBatchSize: best.batchSize,
    byBatchSize: bySize.map((entry) => ({
      ...entry,
      ratioToBest: entry.imagesPerSecond.median / best.imagesPerSecond.median,
    })),
  };
  context.report.heading(`2. ONNX image encoder, vit-b-32, ${model.provider}, by batch size`);
  context.report.table(
    ['batch', 'img/s', '÷ best batch'],
    figures.byBatchSize.map((b) => [
      b.batchSize,
      formatSummary(b.imagesPerSecond, 1),
      b.ratioToBest.toFixed(2),
    ]),
  );
  context.report.set('onnx', figures);
  return figures;
}
