// Image-encoder throughput by batch size, and the raw decode + ONNX loop the service is compared with.
import {
  type ClipModel,
  normalizeInto,
  type PreprocessMode,
  preprocessToCrop,
} from '../../shared/clip/index.ts';

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

/** What one process does without the service: decode a batch (concurrently), then one ONNX call. */
export async function benchRawLoop(
  model: ClipModel,
  images: readonly Uint8Array[],
  batchSize: number,
  totalImages: number,
  mode: PreprocessMode = 'exact',
): Promise<{ images: number; seconds: number; imagesPerSecond: number; msPerBatch: number }> {
  const per = model.pixelsPerImage;
  const started = performance.now();
  let done = 0;
  let batches = 0;
  while (done < totalImages) {
    const count = Math.min(batchSize, totalImages - done);
    const pixels = new Float32Array(count * per);
    const crops = await Promise.all(
      Array.from({ length: count }, (_, i) =>
        preprocessToCrop(images[(done + i) % images.length]!, { mode, config: model.preprocessorConfig }),
      ),
    );
    crops.forEach((crop, i) => normalizeInto(crop.rgb, pixels, i * per, model.preprocessorConfig));
    await model.encodeImages(pixels, count);
    done += count;
    batches += 1;
  }
  const seconds = (performance.now() - started) / 1000;
  return { images: done, seconds, imagesPerSecond: done / seconds, msPerBatch: (seconds * 1000) / batches };
}
