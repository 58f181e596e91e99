import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classifyCommand } from '../../services/cli/classify-command.ts';
import { UsageError } from '../../services/cli/command.ts';
import { ClipmodError } from '../../shared/errors/index.ts';
import { builtModel } from '../helpers/models.ts';

const colors = { red: [230, 20, 20], green: [20, 200, 40], blue: [25, 40, 220] } as const;
const labels = 'a red image,a green image,a blue image';

let folder = '';
let modelDir = '';

async function runClassify(args: string[]): Promise<{ code: number; stdout: string }> {
  const stdout = new PassThrough();
  const chunks: Buffer[] = [];
  stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
  const io = { stdin: new PassThrough(), stdout, stderr: new PassThrough(), env: {} };
  const code = await classifyCommand.run(args, io);
  return { code, stdout: Buffer.concat(chunks).toString('utf8') };
}

beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), 'clipmod-classify-'));
  modelDir = await builtModel('color');
  for (const [name, [r, g, b]] of Object.entries(colors)) {
    const png = await sharp({ create: { width: 320, height: 240, channels: 3, background: { r, g, b } } })
      .png()
      .toBuffer();
    await writeFile(join(folder, `${name}.png`), png);
  }
  await writeFile(join(folder, 'broken.png'), Buffer.from('this is not an image'));
});

afterAll(async () => {
  await rm(folder, { recursive: true, force: true });
});

describe('clipmod classify', () => {
  it.each(Object.keys(colors))(
    'ranks the matching colour first with p > 0.9 for a flat %s picture',
    async (color) => {
      const { code, stdout } = await runClassify([
        join(folder, `${color}.png`),
        '--model',
        modelDir,
        '--labels',
        labels,
        '--json',
      ]);
      expect(code).toBe(0);
      const scores = JSON.parse(stdout) as { label: string; score: number }[];
      expect(scores.map((entry) => entry.label).sort()).toEqual(labels.split(',').sort());
      expect(scores[0]?.label).toBe(`a ${color} image`);
      expect(scores[0]?.score).toBeGreaterThan(0.9);
      expect(scores.reduce((sum, entry) => sum + entry.score, 0)).toBeCloseTo(1, 6);
    },
  );

  it('prints one "label<TAB>score" line per label, highest first, without --json', async () => {
    const { stdout } = await runClassify([
      join(folder, 'green.png'),
      '--model',
      modelDir,
      '--labels',
      'a red image, a green image',
    ]);
    const lines = stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^a green image\t0\.9\d{3}$|^a green image\t1\.0000$/);
    expect(lines[1]).toMatch(/^a red image\t0\.\d{4}$/);
  });

  it('averages repeated --template prompts per label', async () => {
    const args = [join(folder, 'blue.png'), '--model', modelDir, '--labels', 'red,blue', '--json'];
    const { stdout } = await runClassify([
      ...args,
      '--template',
      'a {} image',
      '--template',
      'a photo that is {}.',
    ]);
    const scores = JSON.parse(stdout) as { label: string; score: number }[];
    expect(scores[0]).toMatchObject({ label: 'blue' });
    expect(scores[0]?.score).toBeGreaterThan(0.9);
  });

  it('takes the model folder from MODEL_DIR when --model is absent', async () => {
    const stdout = new PassThrough();
    const io = { stdin: new PassThrough(), stdout, stderr: new PassThrough(), env: { MODEL_DIR: modelDir } };
    const code = await classifyCommand.run([join(folder, 'red.png'), '--labels', labels, '--json'], io);
    expect(code).toBe(0);
    expect(JSON.parse(String(stdout.read()))[0].label).toBe('a red image');
  });

  it('throws a UsageError when --labels is missing', async () => {
    await expect(runClassify([join(folder, 'red.png'), '--model', modelDir])).rejects.toThrow(UsageError);
  });

  it('throws a UsageError for an unknown --mode', async () => {
    const args = [join(folder, 'red.png'), '--model', modelDir, '--labels', labels, '--mode', 'slow'];
    await expect(runClassify(args)).rejects.toThrow(UsageError);
  });

  it('throws the preprocessing ClipmodError for bytes that are not an image', async () => {
    const error = await runClassify([
      join(folder, 'broken.png'),
      '--model',
      modelDir,
      '--labels',
      labels,
    ]).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ClipmodError);
    expect(['unsupported_format', 'corrupt_image']).toContain((error as ClipmodError).code);
  });

  it('throws a bad_request ClipmodError for an image path that does not exist', async () => {
    const args = [join(folder, 'missing.png'), '--model', modelDir, '--labels', labels];
    await expect(runClassify(args)).rejects.toThrow(expect.objectContaining({ code: 'bad_request' }));
  });
});
