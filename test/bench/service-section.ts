// Sections 3 and 6: end-to-end service throughput ÷ a raw decode + ONNX loop at the same batch size,
// run alternately (raw, service, raw, service…) so both see the same machine; then the batch fill
// under saturation, and latency at 50 % of the measured capacity (open loop) and when idle.

import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClipModel } from '../../shared/clip/index.ts';
import { startEmbeddedRedis } from '../../shared/redis/index.ts';
import type { SectionContext } from './bench-report.ts';
import { formatSummary, repeat, round, type Summary, summarize } from './bench-stats.ts';
import { summarizeProfiles } from './cpu-profile-summary.ts';
import { benchRawLoop } from './onnx-bench.ts';
import {
  atFixedRate,
  batchTotals,
  type Driver,
  oneAtATime,
  putPolicy,
  type ServiceHandle,
  saturate,
  startServiceProcess,
  syncDriver,
} from './service-bench.ts';
import { registerWebhook, startCompletionReceiver, webhookDriver } from './webhook-driver.ts';

export const benchPolicy = {
  labels: [{ id: 'weapons', prompts: ['a photo of a gun'], threshold: 0.5, action: 'block' }],
  baseline: ['a photo of a cat'],
};

export type ServiceFigures = {
  driver: Driver['kind'];
  batchSize: number;
  imagesPerRun: number;
  rawLoopImagesPerSecond: Summary;
  /** Wall ms per image of the raw loop's two phases: preprocessing (exact) and the model. */
  rawLoopSplit: { decodeMsPerImage: Summary; modelMsPerImage: Summary };
  serviceImagesPerSecond: Summary;
  /** Per run: service ÷ the raw loop measured just before it. */
  e2eVsRawRatio: Summary;
  /** Mean images per model call under saturation ÷ the maximum batch size. */
  batchFill: Summary;
  halfCapacity: { imagesPerSecond: number; images: number; p50Ms: number; p99Ms: number };
  idle: { p50Ms: number; p99Ms: number; rawBatch1Ms: number };
  /** Images the service processed during the whole section (warm-up and latency phases included). */
  servedImages?: number;
};

async function measureRuns(
  context: SectionContext,
  model: ClipModel,
  service: ServiceHandle,
  driver: Driver,
  batchSize: number,
  total: number,
) {
  return repeat(context.runs, async () => {
    const raw = await benchRawLoop(model, context.photos, batchSize, total);
    const before = await batchTotals(service);
    const saturated = await saturate(driver, context.photos, total, batchSize * 2);
    const after = await batchTotals(service);
    const meanBatch = (after.images - before.images) / (after.batches - before.batches);
    return {
      raw: raw.imagesPerSecond,
      rawDecodeMs: raw.decodeMsPerImage,
      rawModelMs: raw.modelMsPerImage,
      service: saturated.imagesPerSecond,
      fill: meanBatch / batchSize,
    };
  });
}

export async function serviceSection(
  context: SectionContext,
  model: ClipModel,
  modelDir: string,
  batchSize: number,
  serviceEnv: Record<string, string>,
  profileDir?: string,
): Promise<ServiceFigures> {
  const nodeArgs = profileDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${profileDir}`];
  const dataDir = join(tmpdir(), `clipmod-bench-redis-${process.pid}`);
  const redis = await startEmbeddedRedis({ dataDir });
  const receiver = await startCompletionReceiver();
  const service = await startServiceProcess(
    {
      REDIS_URL: redis.url,
      MODEL_DIR: modelDir,
      CLIPMOD_MAX_BATCH_SIZE: String(batchSize),
      CLIPMOD_MAX_BATCH_WAIT_MS: '20',
      CLIPMOD_ALLOW_PRIVATE_NETWORKS: '127.0.0.0/8',
      CLIPMOD_WEBHOOK_SECRET_KEY: randomBytes(32).toString('base64'),
      ...serviceEnv,
    },
    'all',
    nodeArgs,
  );
  try {
    await putPolicy(service, benchPolicy);
    const driver = (await registerWebhook(service, receiver.url))
      ? webhookDriver(service, receiver)
      : syncDriver(service);
    await oneAtATime(driver, context.photos, 2); // warm-up
    const idle = await oneAtATime(driver, context.photos, context.isQuick ? 4 : 10);
    const single = await benchRawLoop(model, context.photos, 1, context.isQuick ? 3 : 8);
    const total = context.isQuick ? 3 * batchSize : Math.max(96, 4 * batchSize);
    const runs = await measureRuns(context, model, service, driver, batchSize, total);
    const capacity = summarize(runs.map((r) => r.service)).median;
    const halfRate = capacity / 2;
    const half = await atFixedRate(
      driver,
      context.photos,
      halfRate,
      Math.max(10, Math.round(halfRate * (context.isQuick ? 5 : 15))),
    );
    const figures: ServiceFigures = {
      driver: driver.kind,
      batchSize,
      imagesPerRun: total,
      rawLoopImagesPerSecond: summarize(runs.map((r) => r.raw)),
      rawLoopSplit: {
        decodeMsPerImage: summarize(runs.map((r) => r.rawDecodeMs)),
        modelMsPerImage: summarize(runs.map((r) => r.rawModelMs)),
      },
      serviceImagesPerSecond: summarize(runs.map((r) => r.service)),
      e2eVsRawRatio: summarize(runs.map((r) => r.service / r.raw)),
      batchFill: summarize(runs.map((r) => r.fill)),
      halfCapacity: { imagesPerSecond: halfRate, images: half.images, p50Ms: half.p50Ms, p99Ms: half.p99Ms },
      idle: { p50Ms: idle.p50Ms, p99Ms: idle.p99Ms, rawBatch1Ms: single.msPerBatch },
    };
    report(context, figures);
    const servedImages = 2 + idle.images + runs.length * total + half.images;
    return { ...figures, servedImages };
  } finally {
    // The service writes its CPU profiles as it exits.
    await service.stop();
    await receiver.stop();
    await redis.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/**
 * With `--profile-service DIR`: each service thread's busy time and top functions, per image served.
 * The profile spans the whole section, raw-loop phases (service idle) included.
 */
export function reportServiceProfile(
  context: SectionContext,
  profileDir: string,
  servedImages: number,
): void {
  const threads = summarizeProfiles(profileDir).filter((thread) => thread.busySeconds > 0.5);
  const perImage = (seconds: number) => ((seconds * 1000) / servedImages).toFixed(1);
  context.report.heading(`Service CPU profile (${servedImages} images served; ms per image)`);
  context.report.table(
    ['thread', 'busy', 'top self time'],
    threads.map((thread, i) => [
      `#${i + 1}`,
      perImage(thread.busySeconds),
      thread.top
        .slice(0, 6)
        .map((entry) => `${entry.name} ${perImage(entry.seconds)}`)
        .join('; '),
    ]),
  );
  context.report.set('serviceProfile', { servedImages, threads });
}

function report(context: SectionContext, f: ServiceFigures): void {
  const path =
    f.driver === 'webhook'
      ? 'POST /v1/moderations (202) → verdict webhook at a loopback receiver'
      : 'POST /v1/moderations?wait (this build has no webhook endpoints)';
  context.report.heading(`3 and 6. Service end to end, vit-b-32 on CPU, max batch ${f.batchSize}`);
  context.report.say(`Path: ${path}; ${f.imagesPerRun} photos per run, ${f.batchSize * 2} in flight.`);
  context.report.say();
  context.report.table(
    ['figure', 'value'],
    [
      [
        `raw decode (exact) + ONNX loop, batch ${f.batchSize}`,
        `${formatSummary(f.rawLoopImagesPerSecond, 1)} img/s`,
      ],
      [
        'raw loop wall ms per image: preprocessing / model',
        `${formatSummary(f.rawLoopSplit.decodeMsPerImage, 1)} / ${formatSummary(f.rawLoopSplit.modelMsPerImage, 1)}`,
      ],
      ['service at saturation', `${formatSummary(f.serviceImagesPerSecond, 1)} img/s`],
      ['**end to end ÷ raw loop** (target ≥ 0.9)', `**${formatSummary(f.e2eVsRawRatio)}**`],
      ['mean batch ÷ max batch under saturation', formatSummary(f.batchFill)],
      [
        `latency at 50 % of capacity (${round(f.halfCapacity.imagesPerSecond, 1)} img/s, ${f.halfCapacity.images} images) p50 / p99`,
        `${round(f.halfCapacity.p50Ms, 0)} / ${round(f.halfCapacity.p99Ms, 0)} ms`,
      ],
      ['idle, one at a time, p50 / p99', `${round(f.idle.p50Ms, 0)} / ${round(f.idle.p99Ms, 0)} ms`],
      ['raw decode + ONNX, batch 1', `${round(f.idle.rawBatch1Ms, 0)} ms`],
    ],
  );
  context.report.set('service', f);
}
