// `npm run bench`: every figure as a ratio to a baseline measured in the same run (PERFORMANCE.md).
// Sections: preprocessing (exact, fast ÷ raw sharp), ONNX img/s by batch size (÷ best batch), and the
// service end to end (÷ a raw decode + ONNX loop at the same batch size). Writes JSON and Markdown
// under .cache/bench/. Not part of `npm test`: no figure here is asserted.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadClipModel } from '../../shared/clip/index.ts';
import { startEmbeddedRedis } from '../../shared/redis/index.ts';
import { goldenBytes, largePhotoJpegs } from '../helpers/images.ts';
import { builtModel } from '../helpers/models.ts';
import { machineDescription, round } from './bench-stats.ts';
import { benchBatchSizes, benchRawLoop } from './onnx-bench.ts';
import { benchPreprocess } from './preprocess-bench.ts';
import { batchTotals, idleLatency, putPolicy, saturate, startServiceProcess } from './service-bench.ts';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    sections: { type: 'string', default: 'preprocess,onnx,service' },
    'batch-size': { type: 'string', default: '8' },
    /** Extra settings for the service under test, e.g. CLIPMOD_INTRA_OP_THREADS=1,CLIPMOD_PREPROCESS_MODE=fast */
    'service-env': { type: 'string', default: '' },
  },
});
const sections = new Set(args.sections.split(','));
const quick = args.quick;
const serviceBatch = Number(args['batch-size']);
const lines: string[] = [
  `# clipmod benchmark — ${new Date().toISOString()}`,
  '',
  `Machine: ${machineDescription()}`,
  '',
];
const results: Record<string, unknown> = {
  machine: machineDescription(),
  startedAt: new Date().toISOString(),
};
const say = (line = '') => {
  lines.push(line);
  console.log(line);
};

const photos = await largePhotoJpegs();
const goldens = ['astronaut.png', 'chelsea.png', 'rocket.jpg', 'retina.jpg', 'coffee-exif6.jpg'].map(
  goldenBytes,
);

if (sections.has('preprocess')) {
  say('## Preprocessing (large photos ≈ 2.8 MP JPEG, 4 in flight)');
  say('| variant | img/s | CPU ms/img | ÷ raw sharp |');
  say('|---|---|---|---|');
  const preprocess = await benchPreprocess({
    images: photos,
    durationMs: quick ? 1500 : 4000,
    concurrency: 4,
  });
  for (const r of preprocess)
    say(
      `| ${r.variant} | ${round(r.imagesPerSecond, 1)} | ${round(r.cpuMsPerImage, 1)} | ${round(r.ratioToSharpRaw ?? Number.NaN)} |`,
    );
  results.preprocess = preprocess;
  say();
}

const modelDir = sections.has('onnx') || sections.has('service') ? await builtModel('vit-b-32') : '';

if (sections.has('onnx')) {
  const model = await loadClipModel(modelDir, { provider: 'cpu' });
  const sizes = quick ? [1, 4, 8] : [1, 4, 8, 16, 32];
  const batches = await benchBatchSizes(model, goldens, sizes, quick ? 8 : 32);
  const best = Math.max(...batches.map((b) => b.imagesPerSecond));
  say(`## ONNX image encoder, vit-b-32 (${model.provider})`);
  say('| batch | img/s | ÷ best batch |');
  say('|---|---|---|');
  for (const b of batches)
    say(`| ${b.batchSize} | ${round(b.imagesPerSecond)} | ${round(b.imagesPerSecond / best)} |`);
  results.onnx = batches;
  say();
  await model.close();
}

if (sections.has('service')) {
  const model = await loadClipModel(modelDir, { provider: 'cpu' });
  const total = quick ? 24 : 64;
  const raw = await benchRawLoop(model, photos, serviceBatch, total);
  const single = await benchRawLoop(model, photos, 1, quick ? 3 : 8);
  await model.close();
  const dataDir = join(tmpdir(), `clipmod-bench-redis-${process.pid}`);
  const redis = await startEmbeddedRedis({ dataDir });
  const service = await startServiceProcess({
    REDIS_URL: redis.url,
    MODEL_DIR: modelDir,
    CLIPMOD_MAX_BATCH_SIZE: String(serviceBatch),
    CLIPMOD_MAX_BATCH_WAIT_MS: '20',
  });
  try {
    await putPolicy(service, {
      labels: [{ id: 'weapons', prompts: ['a photo of a gun'], threshold: 0.5, action: 'block' }],
      baseline: ['a photo of a cat'],
    });
    await idleLatency(service, photos, 2); // warm-up
    const idle = await idleLatency(service, photos, quick ? 4 : 10);
    const before = await batchTotals(service);
    const saturated = await saturate(service, photos, total, serviceBatch * 2);
    const after = await batchTotals(service);
    const meanBatch = (after.images - before.images) / (after.batches - before.batches);
    const figures = {
      rawLoopImagesPerSecond: raw.imagesPerSecond,
      serviceImagesPerSecond: saturated.imagesPerSecond,
      throughputRatio: saturated.imagesPerSecond / raw.imagesPerSecond,
      meanBatchSize: meanBatch,
      batchFill: meanBatch / serviceBatch,
      rawSingleImageMs: raw.msPerBatch / serviceBatch,
      rawBatch1Ms: single.msPerBatch,
      idleP50Ms: idle.p50Ms,
      idleP99Ms: idle.p99Ms,
      idleOverheadP50Ms: idle.p50Ms - single.msPerBatch,
      idleOverheadP99Ms: idle.p99Ms - single.msPerBatch,
      saturatedP50Ms: saturated.p50Ms,
      saturatedP99Ms: saturated.p99Ms,
    };
    say(
      `## Service end to end, vit-b-32 on CPU, batch ${serviceBatch}, ${total} large photos, ${serviceBatch * 2} clients`,
    );
    say('| figure | value |');
    say('|---|---|');
    say(`| raw decode + ONNX loop, batch ${serviceBatch} | ${round(raw.imagesPerSecond)} img/s |`);
    say(`| service through the API at saturation | ${round(saturated.imagesPerSecond)} img/s |`);
    say(`| **throughput ÷ raw loop** (target ≥ 0.9) | **${round(figures.throughputRatio)}** |`);
    say(
      `| **mean batch ÷ max batch** under saturation (target ≥ 0.9) | **${round(figures.batchFill)}** (mean ${round(meanBatch)}) |`,
    );
    say(`| idle sync request p50 / p99 | ${round(idle.p50Ms, 0)} / ${round(idle.p99Ms, 0)} ms |`);
    say(`| raw decode + ONNX, batch 1 | ${round(single.msPerBatch, 0)} ms |`);
    say(
      `| **idle overhead over the raw model** p50 / p99 | **${round(figures.idleOverheadP50Ms, 0)} / ${round(figures.idleOverheadP99Ms, 0)} ms** |`,
    );
    results.service = figures;
  } finally {
    await service.stop();
    await redis.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const outDir = new URL('../../.cache/bench/', import.meta.url).pathname;
mkdirSync(outDir, { recursive: true });
const stamp = new Date().toISOString().replace(/[:.]/g, '-');
writeFileSync(join(outDir, `bench-${stamp}.json`), JSON.stringify(results, null, 2));
writeFileSync(join(outDir, `bench-${stamp}.md`), `${lines.join('\n')}\n`);
console.log(`\nwritten: .cache/bench/bench-${stamp}.{json,md}`);
