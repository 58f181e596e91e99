import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { commands } from '../../services/cli/commands.ts';
import { runCli } from '../../services/cli/main.ts';

async function cli(...argv: string[]) {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (chunk) => (out += chunk));
  stderr.on('data', (chunk) => (err += chunk));
  const code = await runCli(argv, { stdin: new PassThrough(), stdout, stderr, env: {} });
  return { code, out, err };
}

describe('clipmod CLI', () => {
  it('lists every command in --help and exits 0', async () => {
    const { code, out } = await cli('--help');
    expect(code).toBe(0);
    for (const command of commands) expect(out).toContain(command.path.join(' '));
  });

  it('gives every command a --help with a usage line', async () => {
    for (const command of commands) {
      const { code, out } = await cli(...command.path, '--help');
      expect(code, command.path.join(' ')).toBe(0);
      expect(out).toMatch(/^Usage: clipmod /);
    }
  });

  it('exits 2 with one line for unknown commands, groups and options', async () => {
    const unknown = await cli('frobnicate');
    expect([unknown.code, unknown.err]).toEqual([
      2,
      'clipmod: unknown command "frobnicate" (see clipmod --help)\n',
    ]);
    const group = await cli('model');
    expect(group.code).toBe(2);
    expect(group.err).toContain('expected one of build, fetch');
    const option = await cli('classify', 'x.png', '--bogus');
    expect(option.code).toBe(2);
    expect(option.err.trim().split('\n')).toHaveLength(1);
  });

  it('exits 2 with the stable code when the input is bad', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'clipmod-cli-'));
    const garbage = join(dir, 'garbage.png');
    writeFileSync(garbage, 'this is not an image');
    const { code, err } = await cli('preprocess', garbage, '--out', join(dir, 'out.f32'));
    expect(code).toBe(2);
    expect(err).toMatch(/^clipmod preprocess: (unsupported_format|corrupt_image): /);
    expect(err.trim().split('\n')).toHaveLength(1);
  });
});
