import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliIo, UsageError } from '../../services/cli/command.ts';
import { preprocessCommand } from '../../services/cli/preprocess-command.ts';
import { ClipmodError } from '../../shared/errors/index.ts';
import { GOLDEN_DIR } from '../helpers/images.ts';

let dir = '';

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clipmod-preprocess-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function io(): CliIo & { output: () => string } {
  const stdout = new PassThrough();
  const chunks: Buffer[] = [];
  stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
  return {
    stdin: new PassThrough(),
    stdout,
    stderr: new PassThrough(),
    env: {},
    output: () => Buffer.concat(chunks).toString(),
  };
}

async function failure(args: string[]): Promise<unknown> {
  return preprocessCommand.run(args, io()).then(
    () => undefined,
    (error: unknown) => error,
  );
}

describe('clipmod preprocess', () => {
  it('writes the golden float32 tensor of rocket.jpg with --orient raw and reports it', async () => {
    const out = join(dir, 'rocket.f32');
    const streams = io();
    const code = await preprocessCommand.run(
      [`${GOLDEN_DIR}rocket.jpg`, '--out', out, '--orient', 'raw'],
      streams,
    );
    expect(code).toBe(0);
    expect((await readFile(out)).equals(await readFile(`${GOLDEN_DIR}rocket.f32`))).toBe(true);
    expect(streams.output()).toContain('float32 [3,224,224] (602112 bytes)');
  });

  it('uses the upright image by default and the exif golden matches', async () => {
    const out = join(dir, 'coffee.f32');
    await preprocessCommand.run([`${GOLDEN_DIR}coffee-exif6.jpg`, '--out', out], io());
    expect(
      (await readFile(out)).equals(await readFile(`${GOLDEN_DIR}coffee-exif6.exif-transposed.f32`)),
    ).toBe(true);
  });

  it('writes a tensor of the same size in fast mode', async () => {
    const out = join(dir, 'fast.f32');
    await preprocessCommand.run([`${GOLDEN_DIR}chelsea.png`, '--out', out, '--mode', 'fast'], io());
    expect((await readFile(out)).length).toBe(602_112);
  });

  it('reads --model DIR/preprocessor_config.json', async () => {
    const model = join(dir, 'model');
    await rm(model, { recursive: true, force: true });
    await mkdir(model);
    await writeFile(join(model, 'preprocessor_config.json'), JSON.stringify({ size: 64, crop_size: 64 }));
    const out = join(dir, 'small.f32');
    const streams = io();
    await preprocessCommand.run([`${GOLDEN_DIR}chelsea.png`, '--out', out, '--model', model], streams);
    expect((await readFile(out)).length).toBe(3 * 64 * 64 * 4);
    expect(streams.output()).toContain('[3,64,64]');
  });

  it('throws UsageError for a missing --out, a bad --mode or no IMAGE', async () => {
    expect(await failure([`${GOLDEN_DIR}rocket.jpg`])).toBeInstanceOf(UsageError);
    expect(await failure([`${GOLDEN_DIR}rocket.jpg`, '--out', 'x', '--mode', 'slow'])).toBeInstanceOf(
      UsageError,
    );
    expect(await failure(['--out', 'x'])).toBeInstanceOf(UsageError);
    expect(await failure([`${GOLDEN_DIR}rocket.jpg`, '--out', 'x', '--bogus'])).toBeInstanceOf(UsageError);
  });

  it('throws ClipmodError for a file that is not an image, and writes nothing', async () => {
    const notImage = join(dir, 'page.html');
    await writeFile(notImage, '<!doctype html><title>x</title>');
    const out = join(dir, 'none.f32');
    const error = await failure([notImage, '--out', out]);
    expect(error).toBeInstanceOf(ClipmodError);
    expect((error as ClipmodError).code).toBe('unsupported_format');
    await expect(readFile(out)).rejects.toThrow(/ENOENT/);
  });

  it('throws bad_request for a missing image and model_invalid for a missing model folder', async () => {
    expect((await failure([join(dir, 'nope.jpg'), '--out', 'x'])) as ClipmodError).toMatchObject({
      code: 'bad_request',
    });
    const missingModel = [`${GOLDEN_DIR}rocket.jpg`, '--out', 'x', '--model', join(dir, 'no-model')];
    expect((await failure(missingModel)) as ClipmodError).toMatchObject({ code: 'model_invalid' });
  });
});
