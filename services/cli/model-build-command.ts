import { resolve } from 'node:path';
import {
  type BuiltModelKind,
  buildModel,
  builtModelKinds,
  isBuiltModelKind,
  type WrittenFile,
} from '../../shared/clip/model-build/index.ts';
import { type CliCommand, UsageError } from './command.ts';
import { parseCommandArgs } from './parse-args.ts';

const help = `Usage: clipmod model build --kind tiny|color|texture|vit-b-32 --out DIR [--seed N]

Writes a CLIP model folder (Hugging Face / Xenova ONNX layout) that clipmod builds itself, for
machines that cannot download real weights:
  tiny       CLIP-shaped graphs with small dimensions and seeded weights (fast tests)
  color      hand-set weights: images embed their mean colour, prompts their colour words
  texture    images embed a projected 8x8 thumbnail, so resized, re-encoded, cropped and mirrored
             copies stay near (known-bad bank and image search tests); prompts as in color
  vit-b-32   the exact ViT-B/32 architecture with seeded random weights (~600 MB, for benchmarks)

Options:
  --kind KIND   which model to build (required)
  --out DIR     folder to write; created if missing, existing model files are overwritten (required)
  --seed N      weight seed for tiny, texture and vit-b-32 (default 0); the same seed gives identical files

Example:
  clipmod model build --kind color --out .cache/models/color`;

const options = {
  kind: { type: 'string' },
  out: { type: 'string' },
  seed: { type: 'string' },
} as const;

export const modelBuildCommand: CliCommand = {
  path: ['model', 'build'],
  summary: 'write a built-in model folder (tiny, color, texture or vit-b-32)',
  help,
  async run(args, io) {
    const request = parseRequest(args);
    const built = await buildModel(request.kind, request.outDir, { seed: request.seed });
    io.stdout.write(formatReport(built.dir, built.files));
    return 0;
  },
};

function parseRequest(args: readonly string[]): { kind: BuiltModelKind; outDir: string; seed: number } {
  const { values, positionals } = parseCommandArgs(args, options);
  if (positionals.length > 0)
    throw new UsageError(`model build takes no positional arguments, got ${positionals[0]}`);
  const kind = values.kind;
  if (kind === undefined || !isBuiltModelKind(kind)) {
    throw new UsageError(`--kind must be one of ${builtModelKinds.join(', ')}`);
  }
  if (values.out === undefined || values.out === '') throw new UsageError('--out DIR is required');
  return { kind, outDir: resolve(values.out), seed: parseSeed(values.seed) };
}

function parseSeed(raw: string | undefined): number {
  if (raw === undefined) return 0;
  const seed = Number(raw);
  // Seeds feed a 32-bit generator; larger values would silently alias smaller ones.
  if (!/^\d+$/.test(raw) || seed > 0xffffffff)
    throw new UsageError('--seed must be an integer from 0 to 4294967295');
  return seed;
}

/** The folder on the first line, then one line per file with its size, aligned for reading. */
function formatReport(dir: string, files: readonly WrittenFile[]): string {
  const sizes = files.map((file) => formatBytes(file.sizeBytes));
  const width = Math.max(...sizes.map((size) => size.length));
  const lines = files.map((file, index) => `  ${sizes[index]!.padStart(width)}  ${file.path}`);
  const totalBytes = files.reduce((sum, file) => sum + file.sizeBytes, 0);
  return `${dir}\n${lines.join('\n')}\n  ${formatBytes(totalBytes).padStart(width)}  total\n`;
}

function formatBytes(sizeBytes: number): string {
  if (sizeBytes < 1024) return `${sizeBytes} B`;
  if (sizeBytes < 1024 ** 2) return `${(sizeBytes / 1024).toFixed(1)} KiB`;
  return `${(sizeBytes / 1024 ** 2).toFixed(1)} MiB`;
}
