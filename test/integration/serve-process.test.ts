import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, startEmbeddedRedis } from '../../shared/redis/index.ts';
import { solidImage } from '../helpers/images.ts';

// `clipmod serve` as users run it: a real child process, real signals, real exit codes.

const repoRoot = new URL('../../', import.meta.url).pathname;
const children: ChildProcess[] = [];

function serve(args: string[], env: Record<string, string>) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'services/cli/main.ts', 'serve', ...args], {
    cwd: repoRoot,
    env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let output = '';
  child.stdout?.on('data', (chunk) => (output += chunk));
  child.stderr?.on('data', (chunk) => (output += chunk));
  const exited = new Promise<{ code: number | null; ms: number }>((resolve) => {
    const startedAt = Date.now();
    child.once('exit', (code) => resolve({ code, ms: Date.now() - startedAt }));
  });
  return { child, exited, output: () => output };
}

async function waitForOutput(read: () => string, pattern: RegExp, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pattern.test(read())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${pattern}; output:\n${read()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

afterAll(() => {
  for (const child of children) if (child.exitCode === null && child.pid) child.kill('SIGKILL');
});

describe('clipmod serve (process)', () => {
  it('exits 2 within seconds naming every bad setting', async () => {
    const run = serve([], { REDIS_URL: 'not-a-url', PORT: '-5' });
    const { code, ms } = await run.exited;
    expect(code).toBe(2);
    expect(ms).toBeLessThan(10_000);
    expect(run.output()).toMatch(/REDIS_URL/);
    expect(run.output()).toMatch(/PORT/);
    expect(run.output().trim().split('\n')).toHaveLength(1);
  });

  it('refuses a Redis whose maxmemory-policy is allkeys-lru, saying how to fix it', async () => {
    const dataDir = join(tmpdir(), `clipmod-lru-${randomBytes(4).toString('hex')}`);
    const redis = await startEmbeddedRedis({ dataDir });
    try {
      const { Redis } = await import('ioredis');
      const client = new Redis(redis.url);
      await client.config('SET', 'maxmemory-policy', 'allkeys-lru');
      client.disconnect();
      const run = serve(['api'], { REDIS_URL: redis.url, PORT: '0' });
      const { code } = await run.exited;
      expect(code).toBe(2);
      expect(run.output()).toMatch(
        /maxmemory-policy is "allkeys-lru".*CONFIG SET maxmemory-policy noeviction/,
      );
    } finally {
      await redis.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('lets an in-flight request finish on SIGTERM, exits 0 and leaves nothing running', async () => {
    const port = await freePort();
    const adminKey = randomBytes(16).toString('hex');
    const prefix = `{clipmod-test-${randomBytes(4).toString('hex')}}`;
    const run = serve(['api'], {
      REDIS_URL: process.env.REDIS_URL!,
      PORT: String(port),
      CLIPMOD_ADMIN_KEY: adminKey,
      CLIPMOD_REDIS_PREFIX: prefix,
      CLIPMOD_SHUTDOWN_TIMEOUT_MS: '8000',
    });
    await waitForOutput(run.output, /clipmod is ready/);
    const base = `http://127.0.0.1:${port}`;
    const auth = { authorization: `Bearer ${adminKey}` };
    const policy = {
      labels: [{ id: 'red', prompts: ['a red image'], threshold: 0.5, action: 'block' }],
      baseline: ['a blue image'],
    };
    const put = await fetch(`${base}/v1/policies/default`, {
      method: 'PUT',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify(policy),
    });
    expect(put.status).toBe(201);
    // No inference role runs, so ?wait holds the request open for its full 2 s.
    const startedAt = Date.now();
    const inFlight = fetch(`${base}/v1/moderations?wait=2000`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'image/png' },
      body: await solidImage('png', 8, 8),
    });
    await new Promise((resolve) => setTimeout(resolve, 500));
    run.child.kill('SIGTERM');
    await waitForOutput(run.output, /shutting down/);
    run.child.kill('SIGTERM'); // a second signal is ignored, not a hard stop
    const response = await inFlight;
    expect(response.status).toBe(202);
    expect(((await response.json()) as { status: string }).status).toBe('queued');
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(1_900);
    const { code } = await run.exited;
    expect(code).toBe(0);
    expect(run.output()).toMatch(/shutdown already in progress/);
    expect(isRunning(run.child.pid!)).toBe(false);
    await expect(fetch(`${base}/livez`)).rejects.toThrow();
  });
});
