import { monitorEventLoopDelay } from 'node:perf_hooks';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configureImageDecoding } from '../../shared/clip/index.ts';
import { gradientRaster } from '../helpers/images.ts';
import { builtModel } from '../helpers/models.ts';
import { type ServiceHarness, startService } from '../helpers/service-harness.ts';
import { sized } from './chaos-deployment.ts';

// RELIABILITY.md Q11: the event loop of a process running the API and the inference role (the
// all-in-one `clipmod serve`) stays responsive at saturation on the real sharp → ONNX path. The
// budget (README §Guarantees): p99 loop delay < 100 ms and max < lockDuration / 2 (2.5 s at the
// 5 s of the chaos deployment), so a lock renewal is never late. CI asserts a generous form of it
// (p99 < 250 ms on 2 shared cores, also running the load generator); the full run lasts 10 minutes.

let service: ServiceHarness;
let images: Uint8Array[] = [];

beforeAll(async () => {
  configureImageDecoding();
  service = await startService({
    roles: ['api', 'inference'],
    env: { MODEL_DIR: await builtModel('color'), CLIPMOD_MAX_BATCH_SIZE: '8' },
  });
  const put = await service.request('/v1/policies/default', {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      labels: [{ id: 'red', prompts: ['a red image'], threshold: 0.5, action: 'block' }],
      baseline: ['a green image', 'a blue image'],
    }),
  });
  expect(put.status).toBe(201);
  const raw = { width: 640, height: 480, channels: 3 as const };
  const base = gradientRaster(raw.width, raw.height);
  images = await Promise.all(
    Array.from({ length: 64 }, async (_, n) => {
      const pixels = Uint8Array.from(base);
      pixels.fill(n * 4, 0, raw.width * 3);
      return new Uint8Array(await sharp(pixels, { raw }).jpeg({ quality: 90 }).toBuffer());
    }),
  );
}, 120_000);

afterAll(async () => {
  await service?.stop();
});

/** One client: submits and waits for the verdict, again and again until the deadline. */
async function client(deadline: number, offset: number, statuses: number[]): Promise<void> {
  for (let n = offset; performance.now() < deadline; n += 8) {
    const response = await service.request('/v1/moderations?wait=30000', {
      method: 'POST',
      headers: { 'content-type': 'image/jpeg' },
      body: images[n % images.length]!,
    });
    await response.arrayBuffer();
    statuses.push(response.status);
  }
}

describe('Q11: event-loop delay budget under load', () => {
  it('keeps the loop delay p99 and max within budget while the service is saturated', async () => {
    const durationMs = sized(6_000, 600_000);
    const histogram = monitorEventLoopDelay({ resolution: 10 });
    const statuses: number[] = [];
    // Warm-up (model session, policy prompt embeddings, JIT) is start-up cost, not steady state.
    await Promise.all(
      Array.from({ length: 8 }, (_, offset) => client(performance.now() + 1_500, offset, [])),
    );
    histogram.enable();
    const deadline = performance.now() + durationMs;
    await Promise.all(Array.from({ length: 8 }, (_, offset) => client(deadline, offset, statuses)));
    histogram.disable();
    const toMs = (ns: number) => Math.round(ns / 1e5) / 10;
    const figures = {
      requests: statuses.length,
      perSecond: Math.round((statuses.length / durationMs) * 1000),
      p50Ms: toMs(histogram.percentile(50)),
      p99Ms: toMs(histogram.percentile(99)),
      maxMs: toMs(histogram.max),
    };
    process.stderr.write(`[chaos] Q11 ${JSON.stringify(figures)}\n`);
    expect(statuses.length).toBeGreaterThan(0);
    expect(statuses.every((status) => status === 200)).toBe(true);
    expect(figures.p99Ms).toBeLessThan(sized(250, 100));
    expect(figures.maxMs).toBeLessThan(2_500);
  }, 900_000);
});
