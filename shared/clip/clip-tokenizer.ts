// openai/CLIP's tokenizer: our port of its text cleaning and its word regex, then byte-level BPE
// with the merges of the model folder's tokenizer.json, run by @huggingface/tokenizers.
// The package's own normalizer and pre-tokenizer are bypassed on purpose: its NFC re-composes marks
// that only `html.unescape` decoded (`e&#769`), its added-token splitter finds `<|endoftext|>`
// inside `!<|endoftext|>` where the reference regex does not, and its regex lacks IGNORECASE.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tokenizer } from '@huggingface/tokenizers';
import { ClipmodError } from '../errors/index.ts';
import { cleanClipText, PYTHON_WHITESPACE_CLASS } from './text-cleaning.ts';

export const CLIP_CONTEXT_LENGTH = 77;

/** The tokenizer files committed with clipmod; every OpenAI CLIP size shares this vocabulary. */
export const DEFAULT_TOKENIZER_DIR = fileURLToPath(new URL('./assets/', import.meta.url));

export type ClipTokenizer = {
  /** BOS … EOS, unpadded, truncated to contextLength with EOS forced last (clip.tokenize truncate=True). */
  encode(text: string): number[];
  /** Token count before truncation, BOS/EOS included (for policy validation: "prompt longer than 77 tokens"). */
  countTokens(text: string): number;
  /** Batch of ids padded to `length` (default 77) with `padId` (default: EOS 49407, as HF does), row-major BigInt64Array [n, length]. */
  encodeBatch(
    texts: readonly string[],
    options?: { length?: number; padId?: number },
  ): { ids: BigInt64Array; length: number };
  readonly bosId: number;
  readonly eosId: number;
};

const START_OF_TEXT = '<|startoftext|>';
const END_OF_TEXT = '<|endoftext|>';

// simple_tokenizer's `pat`, compiled with IGNORECASE; `\s` spelled out as Python's whitespace.
const CLIP_WORD_RE = new RegExp(
  String.raw`<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|` +
    `[^${PYTHON_WHITESPACE_CLASS}\\p{L}\\p{N}]+`,
  'giu',
);

type WordEncoder = (word: string) => number[];

/**
 * CLIP's `bytes_to_unicode`: printable Latin-1 bytes stand for themselves, the other 68 bytes get
 * U+0100 onwards in byte order, so every UTF-8 byte is one visible vocabulary character.
 */
const BYTE_TO_CHAR: readonly string[] = (() => {
  const isPrintable = (byte: number) =>
    (byte >= 0x21 && byte <= 0x7e) || (byte >= 0xa1 && byte <= 0xac) || (byte >= 0xae && byte <= 0xff);
  let nextSubstitute = 0x100;
  return Array.from({ length: 256 }, (_, byte) =>
    String.fromCharCode(isPrintable(byte) ? byte : nextSubstitute++),
  );
})();

const utf8 = new TextEncoder();
const toByteLevel = (word: string): string =>
  Array.from(utf8.encode(word), (byte) => BYTE_TO_CHAR[byte]).join('');

/** BPE for one word of the reference regex; the two special strings map straight to their ids. */
function createWordEncoder(tokenizer: Tokenizer): WordEncoder {
  const { model } = tokenizer;
  if (model === null) throw new ClipmodError('model_invalid', 'tokenizer.json has no model.');
  const idOf = (token: string): number => {
    const id = tokenizer.token_to_id(token);
    if (id === undefined) {
      throw new ClipmodError('model_invalid', `Token "${token}" is not in the vocabulary.`);
    }
    return id;
  };
  return (word) => {
    if (word === START_OF_TEXT || word === END_OF_TEXT) return [idOf(word)];
    return model([toByteLevel(word)]).map(idOf);
  };
}

/** BPE ids of the cleaned text; stops once `maxIds` are reached since the rest would be truncated. */
function encodeWords(encodeWord: WordEncoder, text: string, maxIds: number): number[] {
  const ids: number[] = [];
  for (const match of cleanClipText(text).matchAll(CLIP_WORD_RE)) {
    ids.push(...encodeWord(match[0]));
    if (ids.length >= maxIds) break;
  }
  return ids;
}

function assertBatchOptions(length: number, padId: number): void {
  if (!Number.isInteger(length) || length < 2) {
    throw new ClipmodError('bad_request', `Batch length must be an integer of at least 2, got ${length}.`);
  }
  if (!Number.isSafeInteger(padId) || padId < 0) {
    throw new ClipmodError('bad_request', `Pad id must be a non-negative integer, got ${padId}.`);
  }
}

function createClipTokenizer(tokenizer: Tokenizer): ClipTokenizer {
  const encodeWord = createWordEncoder(tokenizer);
  const [bosId] = encodeWord(START_OF_TEXT);
  const [eosId] = encodeWord(END_OF_TEXT);
  if (bosId === undefined || eosId === undefined) {
    throw new ClipmodError('model_invalid', 'tokenizer.json lacks the CLIP special tokens.');
  }

  // clip.tokenize(truncate=True): keep the first `contextLength` ids and overwrite the last with EOS.
  const frame = (text: string, contextLength: number): number[] => {
    const framed = [bosId, ...encodeWords(encodeWord, text, contextLength - 1), eosId];
    if (framed.length <= contextLength) return framed;
    const truncated = framed.slice(0, contextLength);
    truncated[contextLength - 1] = eosId;
    return truncated;
  };

  return {
    bosId,
    eosId,
    encode: (text) => frame(text, CLIP_CONTEXT_LENGTH),
    countTokens: (text) => encodeWords(encodeWord, text, Number.POSITIVE_INFINITY).length + 2,
    encodeBatch(texts, { length = CLIP_CONTEXT_LENGTH, padId = eosId } = {}) {
      assertBatchOptions(length, padId);
      const ids = new BigInt64Array(texts.length * length).fill(BigInt(padId));
      texts.forEach((text, row) => {
        ids.set(frame(text, length).map(BigInt), row * length);
      });
      return { ids, length };
    },
  };
}

async function readJsonFile(path: string, isOptional: boolean): Promise<object | undefined> {
  let raw: string;
  try {
    raw = await readFile(path, 'utf8');
  } catch (error) {
    if (isOptional && (error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ClipmodError('model_invalid', `Cannot read ${path}.`, { details: { path }, cause: error });
  }
  try {
    const parsed: unknown = JSON.parse(raw);
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) return parsed;
  } catch (error) {
    throw new ClipmodError('model_invalid', `${path} is not valid JSON.`, {
      details: { path },
      cause: error,
    });
  }
  throw new ClipmodError('model_invalid', `${path} does not hold a JSON object.`, { details: { path } });
}

/** A word-level BPE with CLIP's `</w>` suffix is the only model the reference algorithm describes. */
function assertClipBpe(json: object, path: string): void {
  const model = (json as { model?: { type?: unknown; end_of_word_suffix?: unknown } }).model;
  if (model?.type !== 'BPE' || model.end_of_word_suffix !== '</w>') {
    throw new ClipmodError(
      'model_invalid',
      `${path} is not a CLIP BPE tokenizer (found model type ${String(model?.type)}, ` +
        `end_of_word_suffix ${String(model?.end_of_word_suffix)}).`,
      { details: { path } },
    );
  }
}

/** Reads `folder/tokenizer.json` (and `tokenizer_config.json` when present). */
export async function loadClipTokenizer(folder: string): Promise<ClipTokenizer> {
  const tokenizerPath = join(folder, 'tokenizer.json');
  const json = (await readJsonFile(tokenizerPath, false)) ?? {};
  const config = (await readJsonFile(join(folder, 'tokenizer_config.json'), true)) ?? {};
  assertClipBpe(json, tokenizerPath);
  let tokenizer: Tokenizer;
  try {
    tokenizer = new Tokenizer(json, config);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new ClipmodError('model_invalid', `${tokenizerPath} cannot be loaded: ${reason}`, {
      details: { path: tokenizerPath },
      cause: error,
    });
  }
  return createClipTokenizer(tokenizer);
}
