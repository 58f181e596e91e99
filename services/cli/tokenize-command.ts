import { once } from 'node:events';
import { stat } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import type { Writable } from 'node:stream';
import { DEFAULT_TOKENIZER_DIR, loadClipTokenizer } from '../../shared/clip/index.ts';
import { ClipmodError } from '../../shared/errors/index.ts';
import { type CliCommand, UsageError } from './command.ts';
import { parseCommandArgs } from './parse-args.ts';

const HELP = `Usage: clipmod tokenize [--model DIR] < prompts.jsonl

Reads JSON Lines {"text": "..."} on stdin and writes {"ids": [...]} per line: BOS ... EOS,
unpadded, truncated to 77 with EOS last, exactly as openai/CLIP's clip.tokenize. Blank lines
are skipped.

Options:
  --model DIR   folder holding tokenizer.json (default: the bundled OpenAI CLIP tokenizer)

Example:
  echo '{"text": "a photo of a cat"}' | clipmod tokenize`;

function parsePromptLine(line: string, lineNumber: number): string {
  let record: unknown;
  try {
    record = JSON.parse(line);
  } catch {
    throw new ClipmodError('bad_request', `Line ${lineNumber} is not valid JSON.`, {
      details: { line: lineNumber },
    });
  }
  const text =
    typeof record === 'object' && record !== null ? (record as { text?: unknown }).text : undefined;
  if (typeof text !== 'string') {
    throw new ClipmodError('bad_request', `Line ${lineNumber} has no string "text" field.`, {
      details: { line: lineNumber },
    });
  }
  return text;
}

/** A mistyped --model path is bad usage (exit 2); a folder with broken files stays model_invalid. */
async function assertDirectory(path: string): Promise<void> {
  const isDirectory = await stat(path).then(
    (info) => info.isDirectory(),
    () => false,
  );
  if (!isDirectory) throw new UsageError(`--model ${path} is not a directory.`);
}

/** Waits for the consumer when the stream buffer is full, so large inputs do not pile up in memory. */
async function writeLine(stream: Writable, line: string): Promise<void> {
  if (!stream.write(`${line}\n`)) await once(stream, 'drain');
}

export const tokenizeCommand: CliCommand = {
  path: ['tokenize'],
  summary: 'turn JSON Lines prompts into CLIP token ids (openai/CLIP parity)',
  help: HELP,
  async run(args, io) {
    const { values, positionals } = parseCommandArgs(args, {
      model: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    });
    if (values.help) {
      await writeLine(io.stdout, HELP);
      return 0;
    }
    if (positionals.length > 0) {
      throw new UsageError(`tokenize takes no arguments besides --model, got "${positionals[0]}".`);
    }
    if (values.model !== undefined) await assertDirectory(values.model);
    const tokenizer = await loadClipTokenizer(values.model ?? DEFAULT_TOKENIZER_DIR);
    const lines = createInterface({ input: io.stdin, crlfDelay: Number.POSITIVE_INFINITY });
    let lineNumber = 0;
    for await (const line of lines) {
      lineNumber += 1;
      if (line.trim() === '') continue;
      const text = parsePromptLine(line, lineNumber);
      await writeLine(io.stdout, JSON.stringify({ ids: tokenizer.encode(text) }));
    }
    return 0;
  },
};
