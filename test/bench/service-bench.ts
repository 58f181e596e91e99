// End-to-end service throughput: `clipmod serve` (API + inference worker in one process, as the
// quickstart runs it) in a child process, driven over loopback HTTP by this process.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { freePort } from '../../shared/redis/index.ts';
import { percentile } from './bench-stats.ts';

export type ServiceHandle = { baseUrl: string; adminKey: string; stop(): Promise<void> };

const repoRoot = new URL('../../', import.meta.url).pathname;

export async function startServiceProcess(env: Record<string, string>): Promise<ServiceHandle> {
  const port = await freePort();
  const adminKey = randomBytes(16).toString('hex');
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'services/cli/main.ts', 'serve'], {
    cwd: repoRoot,
    env: {
      PATH: process.env.PATH ?? '',
      PORT: String(port),
      CLIPMOD_ADMIN_KEY: adminKey,
      CLIPMOD_RATE_LIMIT_PER_MINUTE: '0',
      LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
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
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

async function moderateSync(service: ServiceHandle, image: Uint8Array): Promise<number> {
  const started = performance.now();
  const response = await fetch(`${service.baseUrl}/v1/moderations?wait=120000`, {
    method: 'POST',
    headers: { authorization: `Bearer ${service.adminKey}`, 'content-type': 'application/octet-stream' },
    body: image,
  });
  const body = (await response.json()) as { status?: string };
  if (response.status !== 200 || body.status !== 'completed')
    throw new Error(`moderation ended ${response.status} ${JSON.stringify(body)}`);
  return performance.now() - started;
}

export async function putPolicy(service: ServiceHandle, policy: unknown): Promise<void> {
  const response = await fetch(`${service.baseUrl}/v1/policies/default`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${service.adminKey}`, 'content-type': 'application/json' },
    body: JSON.stringify(policy),
  });
  if (response.status >= 300) throw new Error(`policy PUT answered ${response.status}`);
}

/** `concurrency` synchronous clients submit `total` images back to back: throughput at saturation. */
export async function saturate(
  service: ServiceHandle,
  images: readonly Uint8Array[],
  total: number,
  concurrency: number,
) {
  let next = 0;
  const latencies: number[] = [];
  const started = performance.now();
  const lane = async () => {
    while (next < total) {
      const index = next++;
      latencies.push(await moderateSync(service, images[index % images.length]!));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    images: total,
    seconds,
    imagesPerSecond: total / seconds,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
  };
}

/** One request at a time on an otherwise idle service. */
export async function idleLatency(service: ServiceHandle, images: readonly Uint8Array[], count: number) {
  const latencies: number[] = [];
  for (let i = 0; i < count; i++) latencies.push(await moderateSync(service, images[i % images.length]!));
  latencies.sort((a, b) => a - b);
  return { p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99) };
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
