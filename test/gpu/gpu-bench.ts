// GPU benchmark, for the day a CUDA machine is lent: ONNX image-encoder throughput by batch size with
// the CUDA provider (fp32, and fp16 when the folder has onnx/vision_model_fp16.onnx), then the service
// end to end (submit → verdict webhook) ÷ a raw decode + ONNX loop at the best batch. Prints one JSON
// object on stdout (progress goes to stderr) and keeps to about 5 minutes.
//
//   ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install.js   # once
//   npx tsx test/gpu/gpu-bench.ts [--model DIR] [--skip-service]

import { randomBytes } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { type ClipModel, loadClipModel } from '../../shared/clip/index.ts';
import { startEmbeddedRedis } from '../../shared/redis/index.ts';
import { machineFacts } from '../bench/bench-stats.ts';
import { benchBatchSizes, benchRawLoop } from '../bench/onnx-bench.ts';
import { putPolicy, saturate, startServiceProcess, syncDriver } from '../bench/service-bench.ts';
import { benchPolicy } from '../bench/service-section.ts';
import { registerWebhook, startCompletionReceiver, webhookDriver } from '../bench/webhook-driver.ts';
import { goldenBytes, largePhotoJpegs } from '../helpers/images.ts';
import { builtModel } from '../helpers/models.ts';

const { values: args } = parseArgs({
  options: { model: { type: 'string' }, 'skip-service': { type: 'boolean', default: false } },
});
const progress = (message: string) => process.stderr.write(`[gpu-bench] ${message}\n`);
const batchSizes = [1, 8, 32, 64, 128, 256];

async function byBatch(model: ClipModel, images: readonly Uint8Array[]) {
  const results = [];
  for (const size of batchSizes) {
    // ≥ 3 calls and ≥ 1024 images per size: a few seconds each even at tens of thousands img/s.
    const [result] = await benchBatchSizes(model, images, [size], Math.max(3 * size, 1024));
    progress(`batch ${size}: ${result!.imagesPerSecond.toFixed(0)} img/s`);
    results.push(result!);
  }
  const best = results.reduce((a, b) => (b.imagesPerSecond > a.imagesPerSecond ? b : a));
  return { provider: model.provider, best: best.batchSize, byBatchSize: results };
}

async function onnxVariant(modelDir: string, variant: 'fp32' | 'fp16', images: readonly Uint8Array[]) {
  if (variant === 'fp16' && !existsSync(join(modelDir, 'onnx', 'vision_model_fp16.onnx'))) {
    return { skipped: 'the model folder has no onnx/vision_model_fp16.onnx (built models are fp32 only)' };
  }
  const model = await loadClipModel(modelDir, { provider: 'cuda', variant }).catch((error: Error) => error);
  if (model instanceof Error) return { skipped: `the CUDA provider did not start: ${model.message}` };
  try {
    if (model.provider !== 'cuda')
      return { skipped: `the CUDA provider did not start (got ${model.provider})` };
    return await byBatch(model, images);
  } finally {
    await model.close();
  }
}

/** Service (all roles, CUDA) at saturation ÷ the raw decode + ONNX loop, both at `batchSize`. */
async function endToEnd(modelDir: string, batchSize: number) {
  const photos = await largePhotoJpegs();
  const total = Math.max(512, 4 * batchSize);
  const model = await loadClipModel(modelDir, { provider: 'cuda' });
  const raw = await benchRawLoop(model, photos, batchSize, total);
  await model.close();
  const dataDir = join(tmpdir(), `clipmod-gpu-bench-${process.pid}`);
  const redis = await startEmbeddedRedis({ dataDir });
  const receiver = await startCompletionReceiver();
  const service = await startServiceProcess({
    REDIS_URL: redis.url,
    MODEL_DIR: modelDir,
    CLIPMOD_EXECUTION_PROVIDER: 'cuda',
    CLIPMOD_MAX_BATCH_SIZE: String(batchSize),
    CLIPMOD_MAX_BATCH_WAIT_MS: '5',
    CLIPMOD_ALLOW_PRIVATE_NETWORKS: '127.0.0.0/8',
    CLIPMOD_WEBHOOK_SECRET_KEY: randomBytes(32).toString('base64'),
  });
  try {
    await putPolicy(service, benchPolicy);
    const driver = (await registerWebhook(service, receiver.url))
      ? webhookDriver(service, receiver)
      : syncDriver(service);
    await saturate(driver, photos, 2 * batchSize, 2 * batchSize); // warm-up
    const saturated = await saturate(driver, photos, total, 2 * batchSize);
    return {
      driver: driver.kind,
      batchSize,
      images: total,
      rawLoopImagesPerSecond: raw.imagesPerSecond,
      serviceImagesPerSecond: saturated.imagesPerSecond,
      e2e_vs_raw_ratio: saturated.imagesPerSecond / raw.imagesPerSecond,
      p50Ms: saturated.p50Ms,
      p99Ms: saturated.p99Ms,
    };
  } finally {
    await service.stop();
    await receiver.stop();
    await redis.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const started = performance.now();
const modelDir = args.model ?? (await builtModel('vit-b-32'));
const images = ['astronaut.png', 'chelsea.png', 'rocket.jpg', 'retina.jpg'].map(goldenBytes);
progress(`model ${modelDir}`);
const fp32 = await onnxVariant(modelDir, 'fp32', images);
const fp16 = await onnxVariant(modelDir, 'fp16', images);
const bestBatch = 'best' in fp32 ? Math.min(fp32.best, 256) : 64;
const service = args['skip-service'] || !('best' in fp32) ? null : await endToEnd(modelDir, bestBatch);
const result = {
  machine: machineFacts(),
  modelDir,
  onnx: { fp32, fp16 },
  service,
  elapsedSeconds: Math.round((performance.now() - started) / 1000),
};
console.log(JSON.stringify(result));
// Without CUDA nothing was measured: say so in the exit status as well as in the JSON.
if (!('best' in fp32)) process.exitCode = 1;
