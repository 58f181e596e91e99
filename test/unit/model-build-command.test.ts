import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { type CliIo, UsageError } from '../../services/cli/command.ts';
import { modelBuildCommand } from '../../services/cli/model-build-command.ts';

const scratchDirs: string[] = [];

afterAll(async () => {
  await Promise.all(scratchDirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

async function scratchDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'clipmod-model-build-cli-'));
  scratchDirs.push(dir);
  return dir;
}

function captureIo(): { io: CliIo; stdout: () => string } {
  const stdout = new PassThrough();
  const chunks: Buffer[] = [];
  stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
  const io = { stdin: new PassThrough(), stdout, stderr: new PassThrough(), env: {} };
  return { io, stdout: () => Buffer.concat(chunks).toString('utf8') };
}

describe('clipmod model build', () => {
  it('is reached as `clipmod model build`', () => {
    expect(modelBuildCommand.path).toEqual(['model', 'build']);
    expect(modelBuildCommand.help).toContain('--kind tiny|color|texture|vit-b-32');
  });

  it('builds the colour model into --out and prints the folder and each file size', async () => {
    const outDir = join(await scratchDir(), 'color');
    const { io, stdout } = captureIo();
    const code = await modelBuildCommand.run(['--kind', 'color', '--out', outDir], io);
    expect(code).toBe(0);
    const lines = stdout().trimEnd().split('\n');
    expect(lines[0]).toBe(outDir);
    const visionLine = lines.find((line) => line.endsWith('onnx/vision_model.onnx'));
    const visionBytes = (await stat(join(outDir, 'onnx', 'vision_model.onnx'))).size;
    expect(visionLine).toContain(visionBytes < 1024 ? `${visionBytes} B` : 'KiB');
    expect(lines.at(-1)).toMatch(/ total$/);
    expect(JSON.parse(await readFile(join(outDir, 'clipmod.json'), 'utf8')).builtKind).toBe('color');
  });

  it('passes --seed to the builder, which names it in the model id', async () => {
    const outDir = await scratchDir();
    const { io } = captureIo();
    await modelBuildCommand.run(['--kind', 'tiny', '--out', outDir, '--seed', '42'], io);
    expect(JSON.parse(await readFile(join(outDir, 'clipmod.json'), 'utf8')).id).toBe(
      'clipmod/tiny-v1-seed42',
    );
  });

  it.each([
    [['--kind', 'vit-l-14', '--out', '/tmp/x'], /--kind must be one of tiny, color, texture, vit-b-32/],
    [['--out', '/tmp/x'], /--kind must be one of/],
    [['--kind', 'tiny'], /--out DIR is required/],
    [['--kind', 'tiny', '--out', '/tmp/x', '--seed=-1'], /--seed must be an integer/],
    [['--kind', 'tiny', '--out', '/tmp/x', '--seed', '1.5'], /--seed must be an integer/],
    [['--kind', 'tiny', '--out', '/tmp/x', 'extra'], /no positional arguments/],
    [['--kind', 'tiny', '--out', '/tmp/x', '--size', '3'], /size/],
  ])('refuses %j with a UsageError', async (args, message) => {
    const { io } = captureIo();
    const attempt = modelBuildCommand.run(args, io);
    await expect(attempt).rejects.toBeInstanceOf(UsageError);
    await expect(attempt).rejects.toThrow(message);
  });
});
