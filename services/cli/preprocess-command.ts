import { readFile, writeFile } from 'node:fs/promises';
import { endianness } from 'node:os';
import { join } from 'node:path';
import {
  OPENAI_CLIP_PREPROCESSOR,
  type PreprocessorConfig,
  parsePreprocessorConfig,
  preprocessImage,
} from '../../shared/clip/index.ts';
import { ClipmodError } from '../../shared/errors/index.ts';
import { type CliCommand, UsageError } from './command.ts';
import { parseCommandArgs } from './parse-args.ts';

const HELP = `Usage: clipmod preprocess IMAGE --out FILE [--mode exact|fast] [--orient raw|exif] [--model DIR]

Writes the CLIP pixel_values tensor of IMAGE to FILE: float32 little-endian, C-order [3,H,W]
([3,224,224] for OpenAI CLIP).

Options:
  --out FILE      where to write the tensor (required)
  --mode MODE     exact (default): bit-identical to Hugging Face CLIPImageProcessor;
                  fast: sharp resizes, small measured deviation
  --orient WHICH  exif (default): upright as viewers show it; raw: stored pixels, as
                  CLIPImageProcessor sees them
  --model DIR     read DIR/preprocessor_config.json instead of the OpenAI CLIP settings

Example:
  clipmod preprocess cat.jpg --out cat.f32 --orient raw`;

function oneOf<T extends string>(
  name: string,
  value: string | undefined,
  allowed: readonly T[],
): T | undefined {
  if (value === undefined || (allowed as readonly string[]).includes(value)) return value as T | undefined;
  throw new UsageError(`--${name} must be one of ${allowed.join(', ')}, got '${value}'`);
}

async function readBytes(path: string, what: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? String(error);
    throw new ClipmodError('bad_request', `cannot read ${what} ${path}: ${reason}`, { cause: error });
  }
}

async function loadConfig(modelDir: string | undefined): Promise<PreprocessorConfig> {
  if (modelDir === undefined) return OPENAI_CLIP_PREPROCESSOR;
  const path = join(modelDir, 'preprocessor_config.json');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new ClipmodError('model_invalid', `cannot read ${path}`, { cause: error });
  }
  try {
    return parsePreprocessorConfig(JSON.parse(text));
  } catch (error) {
    if (error instanceof ClipmodError) throw error;
    throw new ClipmodError('model_invalid', `${path} is not valid JSON`, { cause: error });
  }
}

/** The tensor's bytes in little-endian order whatever the host's byte order. */
function littleEndianBytes(tensor: Float32Array): Uint8Array {
  if (endianness() === 'LE') return new Uint8Array(tensor.buffer, tensor.byteOffset, tensor.byteLength);
  const view = new DataView(new ArrayBuffer(tensor.byteLength));
  tensor.forEach((value, i) => view.setFloat32(i * 4, value, true));
  return new Uint8Array(view.buffer);
}

export const preprocessCommand: CliCommand = {
  path: ['preprocess'],
  summary: 'write the CLIP [3,224,224] float32 tensor of an image',
  help: HELP,
  async run(args, io) {
    const { values, positionals } = parseCommandArgs(args, {
      out: { type: 'string' },
      mode: { type: 'string' },
      orient: { type: 'string' },
      model: { type: 'string' },
    });
    if (positionals.length !== 1) throw new UsageError('expected exactly one IMAGE argument');
    if (values.out === undefined) throw new UsageError('--out FILE is required');
    const mode = oneOf('mode', values.mode, ['exact', 'fast'] as const);
    const orientation = oneOf('orient', values.orient, ['raw', 'exif'] as const);
    const config = await loadConfig(values.model);
    const bytes = await readBytes(positionals[0]!, 'image');
    const tensor = await preprocessImage(bytes, { mode, orientation, config });
    await writeFile(values.out, littleEndianBytes(tensor));
    const { width, height } = config.output;
    io.stdout.write(`wrote ${values.out}: float32 [3,${height},${width}] (${tensor.byteLength} bytes)\n`);
    return 0;
  },
};
