import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UsageError } from '../../services/cli/command.ts';
import { tokenizeCommand } from '../../services/cli/tokenize-command.ts';
import {
  CLIP_CONTEXT_LENGTH,
  type ClipTokenizer,
  DEFAULT_TOKENIZER_DIR,
  loadClipTokenizer,
} from '../../shared/clip/clip-tokenizer.ts';
import { ClipmodError } from '../../shared/errors/index.ts';

type GoldenCase = { text: string; ids: number[]; n_tokens_untruncated: number };

const golden: GoldenCase[] = JSON.parse(
  readFileSync(new URL('../fixtures/clip-reference/tokenizer-golden.json', import.meta.url), 'utf8'),
);

/** Goldens whose only difference is ftfy's mojibake repair, which is deliberately not ported. */
const EXPECTED_MISSES = ['cafÃ©', 'donâ€™t'];

const BOS = 49406;
const EOS = 49407;
const CAT = 2368;

let tokenizer: ClipTokenizer;
beforeAll(async () => {
  tokenizer = await loadClipTokenizer(DEFAULT_TOKENIZER_DIR);
});

const words = (count: number) => Array.from({ length: count }, () => 'cat').join(' ');

describe('ClipTokenizer against the openai/CLIP goldens', () => {
  it('matches the reference ids of every case except the expected mojibake misses', () => {
    expect(golden.length).toBeGreaterThanOrEqual(214);
    const misses = golden.filter((c) => JSON.stringify(tokenizer.encode(c.text)) !== JSON.stringify(c.ids));
    expect(misses.map((c) => c.text)).toEqual(EXPECTED_MISSES);
  });

  it('counts the untruncated tokens of every case except the expected misses', () => {
    const misses = golden.filter((c) => tokenizer.countTokens(c.text) !== c.n_tokens_untruncated);
    expect(misses.map((c) => c.text)).toEqual(EXPECTED_MISSES);
  });

  it('exposes the CLIP special token ids', () => {
    expect([tokenizer.bosId, tokenizer.eosId]).toEqual([BOS, EOS]);
  });
});

describe('ClipTokenizer where the HF pipeline would diverge', () => {
  it('keeps a combining mark that only html.unescape decoded as its own word', () => {
    expect(tokenizer.encode('e&#769')).toEqual(tokenizer.encode('e \u0301'));
    expect(tokenizer.encode('e&#769')).not.toEqual(tokenizer.encode('é'));
  });

  it('reads a special-token string glued to punctuation as plain text, as the reference regex does', () => {
    const ids = tokenizer.encode('!<|endoftext|>');
    expect(ids.filter((id) => id === EOS)).toEqual([EOS]);
    expect(ids.at(-1)).toBe(EOS);
  });

  it('maps a free-standing special-token string to its id', () => {
    expect(tokenizer.encode('hello<|endoftext|>world')).toEqual([BOS, 3306, EOS, 1002, EOS]);
  });
});

describe('ClipTokenizer truncation and counting', () => {
  it('fits 75 words exactly into 77 ids without truncation', () => {
    const ids = tokenizer.encode(words(75));
    expect(ids).toHaveLength(CLIP_CONTEXT_LENGTH);
    expect(ids.slice(1, -1).every((id) => id === CAT)).toBe(true);
    expect(tokenizer.countTokens(words(75))).toBe(77);
  });

  it('truncates 76 words to 77 ids with EOS forced into the last position', () => {
    const ids = tokenizer.encode(words(76));
    expect(ids).toHaveLength(CLIP_CONTEXT_LENGTH);
    expect(ids[0]).toBe(BOS);
    expect(ids[75]).toBe(CAT);
    expect(ids[76]).toBe(EOS);
    expect(tokenizer.countTokens(words(76))).toBe(78);
  });

  it('counts long inputs in full while encode stays at 77', () => {
    const text = words(500);
    expect(tokenizer.countTokens(text)).toBe(502);
    expect(tokenizer.encode(text)).toHaveLength(77);
  });

  it('encodes empty and whitespace-only text as BOS EOS', () => {
    expect(tokenizer.encode('')).toEqual([BOS, EOS]);
    expect(tokenizer.encode(' \n\t ')).toEqual([BOS, EOS]);
    expect(tokenizer.countTokens('')).toBe(2);
  });
});

describe('ClipTokenizer.encodeBatch', () => {
  it('pads each row to 77 with EOS by default, row-major', () => {
    const { ids, length } = tokenizer.encodeBatch(['a photo of a cat', '']);
    expect(length).toBe(77);
    expect(ids).toBeInstanceOf(BigInt64Array);
    expect(ids).toHaveLength(2 * 77);
    const first = Array.from(ids.subarray(0, 77), Number);
    expect(first.slice(0, 7)).toEqual(tokenizer.encode('a photo of a cat'));
    expect(first.slice(7).every((id) => id === EOS)).toBe(true);
    expect(Array.from(ids.subarray(77, 80), Number)).toEqual([BOS, EOS, EOS]);
  });

  it('pads with the given id and truncates rows to the given length with EOS last', () => {
    const { ids, length } = tokenizer.encodeBatch(['a photo of a cat', words(30)], { length: 10, padId: 0 });
    expect(length).toBe(10);
    expect(Array.from(ids.subarray(0, 10), Number)).toEqual([
      ...tokenizer.encode('a photo of a cat'),
      0,
      0,
      0,
    ]);
    expect(Array.from(ids.subarray(10, 20), Number)).toEqual([BOS, ...Array(8).fill(CAT), EOS]);
  });

  it('returns an empty array for an empty batch', () => {
    expect(tokenizer.encodeBatch([]).ids).toHaveLength(0);
  });

  it('rejects a length too short for BOS and EOS, and a negative pad id', () => {
    expect(() => tokenizer.encodeBatch(['x'], { length: 1 })).toThrow(ClipmodError);
    expect(() => tokenizer.encodeBatch(['x'], { padId: -1 })).toThrow(/Pad id/);
  });
});

const folders: string[] = [];
function tempFolder(files: Record<string, string>): string {
  const folder = mkdtempSync(join(tmpdir(), 'clipmod-tokenizer-'));
  folders.push(folder);
  for (const [name, content] of Object.entries(files)) writeFileSync(join(folder, name), content);
  return folder;
}
afterAll(() => {
  for (const folder of folders) rmSync(folder, { recursive: true, force: true });
});

describe('loadClipTokenizer', () => {
  it('reports model_invalid naming the path when tokenizer.json is missing', async () => {
    const folder = tempFolder({});
    await expect(loadClipTokenizer(folder)).rejects.toMatchObject({
      code: 'model_invalid',
      message: expect.stringContaining(join(folder, 'tokenizer.json')),
    });
  });

  it('reports model_invalid for invalid JSON and for a non-CLIP model', async () => {
    await expect(loadClipTokenizer(tempFolder({ 'tokenizer.json': '{' }))).rejects.toMatchObject({
      code: 'model_invalid',
    });
    const wordPiece = JSON.stringify({ model: { type: 'WordPiece' } });
    await expect(loadClipTokenizer(tempFolder({ 'tokenizer.json': wordPiece }))).rejects.toThrow(
      /found model type WordPiece/,
    );
  });

  it('loads a folder without tokenizer_config.json', async () => {
    const json = readFileSync(join(DEFAULT_TOKENIZER_DIR, 'tokenizer.json'), 'utf8');
    const loaded = await loadClipTokenizer(tempFolder({ 'tokenizer.json': json }));
    expect(loaded.encode('a photo of a cat')).toEqual(tokenizer.encode('a photo of a cat'));
  });
});

async function runTokenize(args: string[], input: string) {
  const stdout = new PassThrough();
  const chunks: Buffer[] = [];
  stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
  const io = { stdin: Readable.from([input]), stdout, stderr: new PassThrough(), env: {} };
  const code = await tokenizeCommand.run(args, io);
  return { code, lines: Buffer.concat(chunks).toString('utf8').split('\n').filter(Boolean) };
}

describe('tokenize command', () => {
  it('writes one {"ids"} line per input line, skipping blank lines and accepting CRLF', async () => {
    const input = '{"text": "a photo of a cat"}\r\n\n{"text": "&amp;amp;", "extra": 1}\n';
    const { code, lines } = await runTokenize([], input);
    expect(code).toBe(0);
    expect(lines.map((line) => JSON.parse(line))).toEqual([
      { ids: tokenizer.encode('a photo of a cat') },
      { ids: tokenizer.encode('&') },
    ]);
  });

  it('truncates long prompts to 77 ids and reads the last line without a newline', async () => {
    const { lines } = await runTokenize(
      ['--model', DEFAULT_TOKENIZER_DIR],
      JSON.stringify({ text: words(90) }),
    );
    expect(JSON.parse(lines[0] ?? '{}').ids).toHaveLength(77);
  });

  it.each([
    ['not JSON', '{"text": "ok"}\n{text}\n', 2],
    ['no text field', '{"prompt": "x"}\n', 1],
    ['a non-string text', '{"text": "ok"}\n\n{"text": 5}\n', 3],
    ['a JSON string instead of an object', '"hello"\n', 1],
  ])('rejects a line with %s as bad_request naming the line', async (_label, input, lineNumber) => {
    const failure = runTokenize([], input);
    await expect(failure).rejects.toBeInstanceOf(ClipmodError);
    await expect(failure).rejects.toMatchObject({
      code: 'bad_request',
      message: expect.stringContaining(`Line ${lineNumber} `),
      details: { line: lineNumber },
    });
  });

  it('rejects positional arguments and unknown options as usage errors', async () => {
    await expect(runTokenize(['extra'], '')).rejects.toBeInstanceOf(UsageError);
    await expect(runTokenize(['--bogus'], '')).rejects.toBeInstanceOf(UsageError);
  });

  it('rejects a --model path that is not a directory as a usage error', async () => {
    const missing = join(tempFolder({}), 'missing');
    await expect(runTokenize(['--model', missing], '')).rejects.toBeInstanceOf(UsageError);
  });

  it('reports model_invalid for a --model folder without tokenizer.json', async () => {
    await expect(runTokenize(['--model', tempFolder({})], '')).rejects.toMatchObject({
      code: 'model_invalid',
    });
  });
});
