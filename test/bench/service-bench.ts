// The service under load: `clipmod serve` (all roles in one process, as the quickstart runs it, or one
// role) in a child process, driven over loopback HTTP by this process. A `Driver` is one way to get a
// verdict for an image (synchronous `?wait`, or submit + the verdict webhook); the load shapes below
// (closed-loop saturation, open-loop at a fixed rate, one at a time) work with either.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { freePort } from '../../shared/redis/index.ts';
import { percentile } from './bench-stats.ts';

export type ServiceHandle = { baseUrl: string; adminKey: string; stop(): Promise<void> };

const repoRoot = new URL('../../', import.meta.url).pathname;

/** `nodeArgs` go before the script, e.g. `--cpu-prof` (which NODE_OPTIONS does not accept). */
export async function startServiceProcess(
  env: Record<string, string>,
  role: 'all' | 'api' = 'all',
  nodeArgs: readonly string[] = [],
): Promise<ServiceHandle> {
  const port = await freePort();
  const adminKey = randomBytes(16).toString('hex');
  const child: ChildProcess = spawn(
    process.execPath,
    [...nodeArgs, '--import', 'tsx', 'services/cli/main.ts', 'serve', role],
    {
      cwd: repoRoot,
      env: {
        PATH: process.env.PATH ?? '',
        PORT: String(port),
        CLIPMOD_ADMIN_KEY: adminKey,
        CLIPMOD_RATE_LIMIT_PER_MINUTE: '0',
        CLIPMOD_PROBE_PORT: '0',
        LOG_LEVEL: 'warn',
        ...env,
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  const baseUrl = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 180_000;
  while (
    (await fetch(`${baseUrl}/readyz`)
      .then((r) => r.status)
      .catch(() => 0)) !== 200
  ) {
    if (child.exitCode !== null) throw new Error(`service exited with ${child.exitCode}`);
    if (Date.now() > deadline) throw new Error('service not ready within 180 s');
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return {
    baseUrl,
    adminKey,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

export function authorized(service: ServiceHandle, contentType: string) {
  return { authorization: `Bearer ${service.adminKey}`, 'content-type': contentType };
}

export async function putPolicy(service: ServiceHandle, policy: unknown): Promise<void> {
  const response = await fetch(`${service.baseUrl}/v1/policies/default`, {
    method: 'PUT',
    headers: authorized(service, 'application/json'),
    body: JSON.stringify(policy),
  });
  if (response.status >= 300) throw new Error(`policy PUT answered ${response.status}`);
}

/** Gets one image's verdict; resolves with the milliseconds from submission to verdict. */
export type Driver = { kind: 'sync' | 'webhook'; moderate(image: Uint8Array): Promise<number> };

export function syncDriver(service: ServiceHandle): Driver {
  return {
    kind: 'sync',
    async moderate(image) {
      const started = performance.now();
      const response = await fetch(`${service.baseUrl}/v1/moderations?wait=30000`, {
        method: 'POST',
        headers: authorized(service, 'application/octet-stream'),
        body: image,
      });
      const body = (await response.json()) as { status?: string };
      if (response.status !== 200 || body.status !== 'completed')
        throw new Error(`moderation ended ${response.status} ${JSON.stringify(body)}`);
      return performance.now() - started;
    },
  };
}

export type LoadFigures = {
  images: number;
  seconds: number;
  imagesPerSecond: number;
  p50Ms: number;
  p99Ms: number;
};

function loadFigures(latencies: number[], seconds: number): LoadFigures {
  latencies.sort((a, b) => a - b);
  return {
    images: latencies.length,
    seconds,
    imagesPerSecond: latencies.length / seconds,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
  };
}

/** `concurrency` clients each wait for their verdict before the next image: throughput at saturation. */
export async function saturate(
  driver: Driver,
  images: readonly Uint8Array[],
  total: number,
  concurrency: number,
): Promise<LoadFigures> {
  let next = 0;
  const latencies: number[] = [];
  const started = performance.now();
  const lane = async () => {
    while (next < total) {
      const index = next++;
      latencies.push(await driver.moderate(images[index % images.length]!));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  return loadFigures(latencies, (performance.now() - started) / 1000);
}

/** Open loop: an image every 1/rate seconds whatever the answers do, so queueing shows in the latency. */
export async function atFixedRate(
  driver: Driver,
  images: readonly Uint8Array[],
  imagesPerSecond: number,
  total: number,
): Promise<LoadFigures> {
  const started = performance.now();
  const pending: Promise<number>[] = [];
  for (let i = 0; i < total; i++) {
    const due = started + (i * 1000) / imagesPerSecond;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    pending.push(driver.moderate(images[i % images.length]!));
  }
  const latencies = await Promise.all(pending);
  return loadFigures(latencies, (performance.now() - started) / 1000);
}

/** One request at a time on an otherwise idle service. */
export async function oneAtATime(driver: Driver, images: readonly Uint8Array[], count: number) {
  const latencies: number[] = [];
  const started = performance.now();
  for (let i = 0; i < count; i++) latencies.push(await driver.moderate(images[i % images.length]!));
  return loadFigures(latencies, (performance.now() - started) / 1000);
}

/** The service's batch-size histogram totals (diff two snapshots for one phase's mean batch size). */
export async function batchTotals(service: ServiceHandle): Promise<{ batches: number; images: number }> {
  const text = await (await fetch(`${service.baseUrl}/metrics`)).text();
  const value = (name: string) =>
    Number(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, 'm').exec(text)?.[1] ?? Number.NaN);
  const sum = value('clipmod_inference_batch_size_sum');
  const count = value('clipmod_inference_batch_size_count');
  return { batches: count || 0, images: sum || 0 };
}
