import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../shared/redis/index.ts';
import { solidImage } from '../helpers/images.ts';
import { builtModel } from '../helpers/models.ts';

// SIGTERM while the inference worker holds jobs: in-flight batches finish and are acknowledged,
// nothing is left active (a stalled job would be redelivered later), and the process exits 0.

const repoRoot = new URL('../../', import.meta.url).pathname;
let child: ChildProcess | undefined;

afterAll(() => {
  if (child?.exitCode === null) child.kill('SIGKILL');
});

describe('inference worker shutdown', () => {
  it('drains in-flight batches on SIGTERM and leaves no job active', async () => {
    const port = await freePort();
    const adminKey = randomBytes(16).toString('hex');
    const prefix = `{clipmod-test-${randomBytes(4).toString('hex')}}`;
    let output = '';
    child = spawn(process.execPath, ['--import', 'tsx', 'services/cli/main.ts', 'serve'], {
      cwd: repoRoot,
      env: {
        PATH: process.env.PATH ?? '',
        REDIS_URL: process.env.REDIS_URL!,
        PORT: String(port),
        CLIPMOD_ADMIN_KEY: adminKey,
        CLIPMOD_REDIS_PREFIX: prefix,
        CLIPMOD_RATE_LIMIT_PER_MINUTE: '0',
        MODEL_DIR: await builtModel('color'),
        CLIPMOD_MAX_BATCH_SIZE: '4',
        CLIPMOD_MAX_BATCH_WAIT_MS: '200',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.on('data', (chunk) => (output += chunk));
    child.stderr?.on('data', (chunk) => (output += chunk));
    const exited = new Promise<number | null>((resolve) => child?.once('exit', resolve));
    const base = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 60_000;
    while (
      (await fetch(`${base}/readyz`)
        .then((r) => r.status)
        .catch(() => 0)) !== 200
    ) {
      if (Date.now() > deadline) throw new Error(`not ready:\n${output}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const auth = { authorization: `Bearer ${adminKey}` };
    const policy = {
      labels: [{ id: 'red', prompts: ['a red image'], threshold: 0.5, action: 'block' }],
      baseline: ['a blue image'],
    };
    await fetch(`${base}/v1/policies/default`, {
      method: 'PUT',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify(policy),
    });
    const image = await solidImage('png', 400, 300, [220, 30, 30]);
    const submitted = await Promise.all(
      Array.from({ length: 12 }, async () => {
        const response = await fetch(`${base}/v1/moderations`, {
          method: 'POST',
          headers: { ...auth, 'content-type': 'image/png' },
          body: image,
        });
        return ((await response.json()) as { id: string }).id;
      }),
    );
    child.kill('SIGTERM');
    expect(await exited).toBe(0);

    const redis = new Redis(process.env.REDIS_URL!);
    try {
      expect(await redis.llen(`${prefix}:inference:active`)).toBe(0);
      const statuses = await Promise.all(
        submitted.map(
          async (id) =>
            (JSON.parse((await redis.get(`${prefix}:moderation:${id}`))!) as { status: string }).status,
        ),
      );
      // Every accepted moderation is either finished or still queued for the next worker — never stuck.
      expect(statuses.every((status) => status === 'completed' || status === 'queued')).toBe(true);
      expect(statuses).toContain('completed');
      const waiting = await redis.llen(`${prefix}:inference:wait`);
      expect(waiting).toBe(statuses.filter((status) => status === 'queued').length);
    } finally {
      redis.disconnect();
    }
  });
});
