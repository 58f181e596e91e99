import { type ChildProcess, spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../shared/redis/index.ts';
import { solidImage } from '../helpers/images.ts';
import { builtModel } from '../helpers/models.ts';
import { type ServiceHarness, startService } from '../helpers/service-harness.ts';

// Hot reload across processes, as deployed: an API (in this process) and two `clipmod serve inference`
// child processes on one Redis. A PUT must change the very next verdict within a second, and every
// worker must have prepared the new version within that second, embedding only the prompt texts that
// no earlier version used (the rest come from the text-embedding cache the workers share in Redis).

const repoRoot = new URL('../../', import.meta.url).pathname;
const baseline = ['a green image', 'a blue image', 'a yellow image', 'a black image', 'a white image'];
const v1 = { labels: [{ id: 'red', prompts: ['a red image'], threshold: 0.5, action: 'block' }], baseline };
/** The action changes (the verdict must follow) and two baseline texts are new (the only cache misses). */
const v2 = {
  labels: [{ ...v1.labels[0], action: 'review' }],
  baseline: [...baseline, 'a purple image', 'a pink image'],
};
const v1Texts = 6;
const v2Texts = 8;
const newTexts = 2;

type Worker = { child: ChildProcess; probePort: number; output: () => string };

let service: ServiceHarness;
let red: Uint8Array;
const workers: Worker[] = [];

async function startWorker(env: Record<string, string>): Promise<Worker> {
  const probePort = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'services/cli/main.ts', 'serve', 'inference'], {
    cwd: repoRoot,
    env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'warn', CLIPMOD_PROBE_PORT: String(probePort), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk) => (output += chunk));
  child.stderr?.on('data', (chunk) => (output += chunk));
  return { child, probePort, output: () => output };
}

async function waitUntilReady(worker: Worker, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (worker.child.exitCode !== null) throw new Error(`worker exited early:\n${worker.output()}`);
    const ready = await fetch(`http://127.0.0.1:${worker.probePort}/readyz`).catch(() => undefined);
    if (ready?.status === 200) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`worker not ready in ${timeoutMs} ms:\n${worker.output()}`);
}

/** The worker's text-embedding cache lookups so far, from its /metrics. */
async function cacheLookups(worker: Worker): Promise<{ hits: number; misses: number }> {
  const text = await (await fetch(`http://127.0.0.1:${worker.probePort}/metrics`)).text();
  const count = (result: string) => {
    const pattern = new RegExp(
      `^clipmod_text_embedding_cache_total\\{[^}]*result="${result}"[^}]*\\} (\\d+)`,
      'm',
    );
    return Number(pattern.exec(text)?.[1] ?? 0);
  };
  return { hits: count('hit'), misses: count('miss') };
}

/** Polls every worker until `done` holds for all, or the deadline passes; returns the last readings. */
async function pollWorkers<T>(
  read: (worker: Worker) => Promise<T>,
  done: (value: T) => boolean,
  deadline: number,
) {
  let readings = await Promise.all(workers.map(read));
  while (!readings.every(done) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    readings = await Promise.all(workers.map(read));
  }
  return readings;
}

const put = (body: unknown) =>
  service.request('/v1/policies/default', {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

async function moderateRed() {
  const response = await service.request('/v1/moderations?wait=10000', {
    method: 'POST',
    headers: { 'content-type': 'image/png' },
    body: red,
  });
  return (await response.json()) as Record<string, any>;
}

beforeAll(async () => {
  const modelDir = await builtModel('color');
  red = await solidImage('png', 32, 32, [230, 20, 20]);
  service = await startService({ env: { MODEL_DIR: modelDir }, roles: ['api'] });
  const env = {
    REDIS_URL: process.env.REDIS_URL!,
    CLIPMOD_REDIS_PREFIX: service.prefix,
    MODEL_DIR: modelDir,
    CLIPMOD_INTRA_OP_THREADS: '1',
  };
  workers.push(await startWorker(env), await startWorker(env));
  await Promise.all(workers.map((worker) => waitUntilReady(worker)));
});

afterAll(async () => {
  // Workers first: stopping the service deletes the test's keys, which they would otherwise recreate.
  await Promise.all(
    workers.map(async ({ child }) => {
      if (child.exitCode !== null || child.pid === undefined) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10_000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }),
  );
  await service?.stop();
});

describe('policy hot reload across two worker processes', () => {
  it('changes the next verdict within 1 s of a PUT, embedding only the new prompt texts', async () => {
    expect((await put(v1)).status).toBe(201);
    const before = await moderateRed();
    expect(before).toMatchObject({ policy: { version: 1 }, verdict: { action: 'block' } });
    // Both workers prepared v1 (one through the job, both through the change channel).
    const total = (lookups: { hits: number; misses: number }) => lookups.hits + lookups.misses;
    const warmed = await pollWorkers(cacheLookups, (l) => total(l) >= v1Texts, Date.now() + 5_000);
    expect(warmed.map(total)).toEqual([v1Texts, v1Texts]);

    const putAt = Date.now();
    expect((await put(v2)).status).toBe(200);
    const after = await moderateRed();
    const verdictMs = Date.now() - putAt;
    expect(after).toMatchObject({
      status: 'completed',
      policy: { version: 2 },
      verdict: { action: 'review' },
    });
    expect(verdictMs).toBeLessThan(1_000);

    const lookups = await pollWorkers(cacheLookups, (l) => total(l) >= v1Texts + v2Texts, putAt + 1_000);
    const deltas = lookups.map((l, i) => ({
      hits: l.hits - warmed[i]!.hits,
      misses: l.misses - warmed[i]!.misses,
    }));
    // Every worker prepared v2 exactly once, within the second, and re-embedded none of v1's texts.
    expect(deltas.map((d) => d.hits + d.misses)).toEqual([v2Texts, v2Texts]);
    for (const delta of deltas) expect(delta.misses).toBeLessThanOrEqual(newTexts);
    // The new texts were embedded somewhere (each worker may race the other to the cache, at most once each).
    expect(deltas.reduce((sum, d) => sum + d.misses, 0)).toBeGreaterThanOrEqual(newTexts);
    console.log(
      `PUT → changed verdict in ${verdictMs} ms; cache deltas per worker ${JSON.stringify(deltas)}`,
    );
  });
});
