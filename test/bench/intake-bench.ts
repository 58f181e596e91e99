// Section 5: API intake requests/s for ≈ 100 KB JPEGs ÷ raw BullMQ `add` in the same run. The API runs
// alone (`serve api`, nothing consumes the queue) against a private Redis; load comes from a fixed
// number of keep-alive connections over node:http, each sending its next request when the last answers.
import { rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import sharp from 'sharp';
import { startEmbeddedRedis } from '../../shared/redis/index.ts';
import { GOLDEN_DIR } from '../helpers/images.ts';
import type { SectionContext } from './bench-report.ts';
import { formatSummary, percentile, repeat, round, type Summary, summarize } from './bench-stats.ts';
import { putPolicy, type ServiceHandle, startServiceProcess } from './service-bench.ts';
import { benchPolicy } from './service-section.ts';

/** A photo re-encoded at the width whose JPEG comes closest to `targetBytes` (from below or above). */
export async function jpegOfAbout(targetBytes: number): Promise<Uint8Array> {
  let best = new Uint8Array();
  for (let width = 200; width <= 2000; width += 20) {
    const jpeg = await sharp(`${GOLDEN_DIR}astronaut.png`).resize({ width }).jpeg({ quality: 90 }).toBuffer();
    if (Math.abs(jpeg.length - targetBytes) < Math.abs(best.length - targetBytes))
      best = new Uint8Array(jpeg);
    if (jpeg.length > targetBytes) break;
  }
  return best;
}

async function postImages(service: ServiceHandle, image: Uint8Array, total: number, connections: number) {
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  const url = new URL('/v1/moderations', service.baseUrl);
  const headers = {
    authorization: `Bearer ${service.adminKey}`,
    'content-type': 'image/jpeg',
    'content-length': String(image.length),
  };
  const post = () =>
    new Promise<void>((resolve, reject) => {
      const outgoing = request(url, { method: 'POST', agent, headers }, (response) => {
        response.resume();
        response.on('end', () =>
          response.statusCode === 202
            ? resolve()
            : reject(new Error(`intake answered ${response.statusCode}`)),
        );
      });
      outgoing.on('error', reject);
      outgoing.end(image);
    });
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  const lane = async () => {
    while (next++ < total) {
      const sent = performance.now();
      await post();
      latencies.push(performance.now() - sent);
    }
  };
  await Promise.all(Array.from({ length: connections }, lane));
  const seconds = (performance.now() - started) / 1000;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  return {
    requestsPerSecond: total / seconds,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
  };
}

/** The limit intake is compared with: BullMQ `add` of a small payload, `concurrency` in flight. */
async function rawQueueAdds(redisUrl: string, total: number, concurrency: number): Promise<number> {
  const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const queue = new Queue('bench-raw-add', { connection, prefix: '{bench}' });
  await queue.waitUntilReady();
  let next = 0;
  const started = performance.now();
  const lane = async () => {
    while (next < total) {
      const index = next++;
      await queue.add('moderation.run', { moderationId: `bench-${index}`, tenant: 'default' });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  const jobsPerSecond = total / ((performance.now() - started) / 1000);
  await queue.obliterate({ force: true });
  await queue.close();
  connection.disconnect();
  return jobsPerSecond;
}

export type IntakeFigures = {
  imageBytes: number;
  connections: number;
  requestsPerRun: number;
  intakeRequestsPerSecond: Summary;
  rawAddJobsPerSecond: Summary;
  intakeVsRawAddRatio: Summary;
  intakeLatency: { p50Ms: number; p99Ms: number };
};

export async function intakeSection(context: SectionContext): Promise<IntakeFigures> {
  const dataDir = join(tmpdir(), `clipmod-bench-intake-${process.pid}`);
  const redis = await startEmbeddedRedis({ dataDir });
  const service = await startServiceProcess({ REDIS_URL: redis.url }, 'api');
  try {
    await putPolicy(service, benchPolicy);
    const image = await jpegOfAbout(100_000);
    const connections = 32;
    const total = context.isQuick ? 200 : 1000;
    await postImages(service, image, 50, connections); // warm-up: JIT, connections, Redis scripts
    const runs = await repeat(context.runs, async () => {
      const add = await rawQueueAdds(redis.url, total, connections);
      const intake = await postImages(service, image, total, connections);
      return { add, intake };
    });
    const figures: IntakeFigures = {
      imageBytes: image.length,
      connections,
      requestsPerRun: total,
      intakeRequestsPerSecond: summarize(runs.map((r) => r.intake.requestsPerSecond)),
      rawAddJobsPerSecond: summarize(runs.map((r) => r.add)),
      intakeVsRawAddRatio: summarize(runs.map((r) => r.intake.requestsPerSecond / r.add)),
      intakeLatency: { p50Ms: runs.at(-1)!.intake.p50Ms, p99Ms: runs.at(-1)!.intake.p99Ms },
    };
    report(context, figures);
    return figures;
  } finally {
    await service.stop();
    await redis.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

function report(context: SectionContext, f: IntakeFigures): void {
  context.report.heading(
    `5. API intake, ${round(f.imageBytes / 1000, 0)} KB JPEG, ${f.connections} connections`,
  );
  context.report.table(
    ['figure', 'value'],
    [
      ['raw BullMQ add (no image)', `${formatSummary(f.rawAddJobsPerSecond, 0)} jobs/s`],
      ['API intake (`serve api`, 202 answers)', `${formatSummary(f.intakeRequestsPerSecond, 0)} req/s`],
      ['**intake ÷ raw add**', `**${formatSummary(f.intakeVsRawAddRatio)}**`],
      [
        'intake latency p50 / p99 (last run)',
        `${round(f.intakeLatency.p50Ms, 1)} / ${round(f.intakeLatency.p99Ms, 1)} ms`,
      ],
    ],
  );
  context.report.set('intake', f);
}
