import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../services/cli/main.ts';
import { type Rgb, solidImage } from '../helpers/images.ts';
import { builtModel } from '../helpers/models.ts';
import { type ServiceHarness, startService } from '../helpers/service-harness.ts';

// `clipmod calibrate` against the real service (in process, `color` model): a folder with one
// sub-folder per label and one of negatives goes in, the proposed thresholds come out; bad usage,
// a missing folder or a missing key exit 2 before anything is sent.

const policy = {
  labels: [
    { id: 'red', prompts: ['a red image'], threshold: 0.5, action: 'block' },
    { id: 'blue', prompts: ['a blue image'], threshold: 0.5, action: 'review' },
  ],
  baseline: ['a green image', 'a yellow image', 'a white image', 'a purple image'],
};
// Red scores (measured on this policy's prompts): the dull red is the lowest red example and the
// orange-red negative scores above it, so precision 0.75 is first reached at the dull red's score.
const dullRed: Rgb = [220, 100, 90];
const examples: Record<string, Rgb[]> = {
  red: [[230, 20, 20], [180, 30, 50], dullRed],
  blue: [
    [25, 40, 220],
    [40, 60, 200],
  ],
  negatives: [
    [240, 110, 60],
    [250, 150, 20],
    [20, 200, 40],
    [245, 245, 245],
  ],
};

let service: ServiceHarness;
let dir = '';

beforeAll(async () => {
  [service, dir] = await Promise.all([
    builtModel('color').then((model) => startService({ env: { MODEL_DIR: model } })),
    mkdtemp(join(tmpdir(), 'clipmod-calibrate-')),
  ]);
  const put = await service.request('/v1/policies/colors', {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(policy),
  });
  expect(put.status).toBe(201);
  for (const [folder, colours] of Object.entries(examples)) {
    await mkdir(join(dir, folder));
    for (const [index, rgb] of colours.entries())
      await writeFile(join(dir, folder, `${index}.png`), await solidImage('png', 48, 48, rgb));
  }
  // Not an image: skipped, like any file without an image extension.
  await writeFile(join(dir, 'red', 'README.txt'), 'examples of red');
});

afterAll(async () => {
  await service?.stop();
  await rm(dir, { recursive: true, force: true });
});

async function calibrate(args: string[], env: Record<string, string> = {}) {
  const [stdout, stderr] = [new PassThrough(), new PassThrough()];
  const chunks = { out: [] as Buffer[], err: [] as Buffer[] };
  stdout.on('data', (chunk: Buffer) => chunks.out.push(chunk));
  stderr.on('data', (chunk: Buffer) => chunks.err.push(chunk));
  const io = { stdin: new PassThrough(), stdout, stderr, env: { CLIPMOD_API_KEY: service.adminKey, ...env } };
  const code = await runCli(['calibrate', ...args], io);
  return {
    code,
    stdout: Buffer.concat(chunks.out).toString('utf8'),
    stderr: Buffer.concat(chunks.err).toString('utf8'),
  };
}

/** The red score the live version gives one image, through an ordinary moderation. */
async function redScore(rgb: Rgb): Promise<number> {
  const response = await service.request('/v1/moderations?wait=20000&policy=colors', {
    method: 'POST',
    headers: { 'content-type': 'image/png' },
    body: Buffer.from(await solidImage('png', 48, 48, rgb)),
  });
  const { verdict } = (await response.json()) as { verdict: { labels: { id: string; score: number }[] } };
  return verdict.labels.find((label) => label.id === 'red')!.score;
}

describe('clipmod calibrate against a running service', () => {
  it('proposes for each label the lowest threshold reaching the target precision', async () => {
    const args = ['--policy', 'colors', '--dir', dir, '--url', service.baseUrl];
    const { code, stdout, stderr } = await calibrate([...args, '--target-precision', '0.75', '--json']);
    expect([code, stderr]).toEqual([0, '']);
    const answer = JSON.parse(stdout);
    expect(answer.policy).toEqual({ id: 'colors', version: 1 });
    const [red, blue] = answer.labels;
    expect(red).toMatchObject({
      label: 'red',
      positives: 3,
      negatives: 6,
      proposed: { precision: 0.75, recall: 1, truePositives: 3, falsePositives: 1 },
    });
    expect(red.proposed.threshold).toBeCloseTo(await redScore(dullRed), 5);
    expect(red.proposed.threshold).toBeLessThan(await redScore([240, 110, 60]));
    expect(blue).toMatchObject({ label: 'blue', positives: 2, negatives: 7 });
    expect(blue.proposed).toMatchObject({ precision: 1, recall: 1 });
  });

  it('raises the red threshold above the orange-red negative for precision 1, at the cost of recall', async () => {
    const args = ['--policy', 'colors', '--dir', dir, '--url', service.baseUrl, '--target-precision', '1'];
    const { code, stdout } = await calibrate(args);
    expect(code).toBe(0);
    const lines = stdout.trimEnd().split('\n');
    expect(lines.slice(0, 2)).toEqual([
      'policy colors v1',
      'label\tcurrent\tproposed\tprecision\trecall\tpositives\tnegatives',
    ]);
    const red = lines.find((line) => line.startsWith('red\t'))!.split('\t');
    expect(red).toEqual([
      'red',
      '0.5',
      expect.stringMatching(/^0\.9\d{3}|^1\.0000$/),
      '1.000',
      '0.667',
      '3',
      '6',
    ]);
    expect(Number(red[2])).toBeGreaterThan(await redScore([240, 110, 60]));
    expect(lines.find((line) => line.startsWith('blue\t'))).toMatch(
      /^blue\t0\.5\t\d\.\d{4}\t1\.000\t1\.000\t2\t7$/,
    );
  });

  it('exits 2 with one line on stderr for bad usage', async () => {
    for (const args of [
      ['--dir', dir],
      ['--policy', 'colors', '--dir', dir, '--target-precision', '0'],
      ['--nope'],
    ]) {
      const { code, stdout, stderr } = await calibrate(args);
      expect(code).toBe(2);
      expect(stdout).toBe('');
      expect(stderr).toMatch(/^clipmod calibrate: .+ \(see clipmod calibrate --help\)\n$/);
    }
  });

  it('exits 2 for a missing folder, a missing key, or a sub-folder the policy does not know', async () => {
    const base = ['--policy', 'colors', '--url', service.baseUrl];
    const missing = await calibrate([...base, '--dir', join(dir, 'no-such-folder')]);
    expect([missing.code, missing.stderr]).toEqual([
      2,
      `clipmod calibrate: bad_request: cannot read the folder ${join(dir, 'no-such-folder')}\n`,
    ]);

    const noKey = await calibrate([...base, '--dir', dir], { CLIPMOD_API_KEY: '' });
    expect(noKey.code).toBe(2);
    expect(noKey.stderr).toContain('set CLIPMOD_API_KEY (or CLIPMOD_ADMIN_KEY) to an admin key');

    const other = await mkdtemp(join(tmpdir(), 'clipmod-calibrate-unknown-'));
    try {
      await mkdir(join(other, 'green'));
      await writeFile(join(other, 'green', 'a.png'), await solidImage('png', 16, 16, [20, 200, 40]));
      const unknown = await calibrate([...base, '--dir', other]);
      expect(unknown.code).toBe(2);
      expect(unknown.stderr).toContain('"green" is neither a label of colors nor "negatives"');
    } finally {
      await rm(other, { recursive: true, force: true });
    }
  });

  it('exits 1 when the service cannot be reached', async () => {
    const { code, stderr } = await calibrate([
      '--policy',
      'colors',
      '--dir',
      dir,
      '--url',
      'http://127.0.0.1:1',
    ]);
    expect(code).toBe(1);
    expect(stderr).toMatch(/^clipmod calibrate: unavailable: cannot reach http:\/\/127\.0\.0\.1:1/);
  });
});
