import { randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UsageError } from '../../services/cli/command.ts';
import { policyInstallStarterCommand } from '../../services/cli/policy-install-starter-command.ts';
import { PolicyStore, starterPolicy } from '../../shared/policy/index.ts';
import { connectRedis } from '../../shared/redis/index.ts';

// `clipmod policy install-starter` against the test Redis, under a unique prefix.

const prefix = `{clipmod-test-${randomBytes(6).toString('hex')}}`;
let redis: Redis;

beforeAll(async () => {
  redis = await connectRedis(process.env.REDIS_URL!, 'producer', 'install-starter-test');
});

afterAll(async () => {
  if (!redis) return;
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
});

async function run(args: string[]): Promise<{ code: number; stdout: string }> {
  const stdout = new PassThrough();
  let text = '';
  stdout.on('data', (chunk) => (text += chunk));
  const env = { REDIS_URL: process.env.REDIS_URL, CLIPMOD_REDIS_PREFIX: prefix };
  const code = await policyInstallStarterCommand.run(args, {
    stdin: new PassThrough(),
    stdout,
    stderr: stdout,
    env,
  });
  return { code, stdout: text };
}

describe('clipmod policy install-starter', () => {
  it('prints the starter policy as JSON with --print, touching no Redis', async () => {
    const { code, stdout } = await run(['--print']);
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toEqual(starterPolicy());
    expect(await redis.keys(`${prefix}*`)).toEqual([]);
  });

  it('installs it as the tenant’s policy, authored by the CLI, and says it is uncalibrated', async () => {
    const { code, stdout } = await run(['--tenant', 'acme']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/"default" version 1 for tenant "acme".*uncalibrated/);
    const stored = await new PolicyStore({ redis, prefix }).get('acme', 'default');
    expect(stored).toMatchObject({
      version: 1,
      author: 'cli:install-starter',
      document: { calibrated: false },
    });
    expect(stored?.document.labels.map((label) => label.id)).toContain('weapons');
  });

  it('refuses to replace an existing policy unless --force, which writes a new version', async () => {
    await expect(run(['--tenant', 'acme'])).rejects.toMatchObject({ code: 'conflict' });
    const { code } = await run(['--tenant', 'acme', '--force']);
    expect(code).toBe(0);
    expect((await new PolicyStore({ redis, prefix }).get('acme', 'default'))?.version).toBe(2);
  });

  it('rejects a tenant or id that could not be a key', async () => {
    await expect(run(['--tenant', 'Not:OK'])).rejects.toBeInstanceOf(UsageError);
    await expect(run(['--id', ''])).rejects.toBeInstanceOf(UsageError);
    await expect(run(['extra'])).rejects.toBeInstanceOf(UsageError);
  });
});
