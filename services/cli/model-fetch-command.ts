import {
  createProgressRenderer,
  defaultHubEndpoint,
  defaultModelRepo,
  fetchModel,
  type ModelVariant,
  modelVariants,
} from '../../shared/clip/model-fetch/index.ts';
import { type CliCommand, type CliIo, UsageError } from './command.ts';
import { parseCommandArgs } from './parse-args.ts';

const help = `Usage: clipmod model fetch [REPO] --out DIR [--revision R] [--variant fp32|fp16|quantized] [--endpoint URL]

Downloads a CLIP model in the Xenova ONNX layout from the Hugging Face hub into DIR: config,
preprocessor and tokenizer files plus onnx/vision_model*.onnx and onnx/text_model*.onnx for the
variant, all pinned to the commit REVISION resolves to. Interrupted downloads resume; every file is
checked against the hub's sha256 / git blob id. Writes DIR/clipmod.json last.

Arguments:
  REPO                 hub repository (default ${defaultModelRepo})

Options:
  --out DIR            model folder to create or complete (required)
  --revision R         branch, tag or commit (default main)
  --variant V          fp32 (default), fp16 or quantized
  --endpoint URL       hub or mirror (default $HF_ENDPOINT, else ${defaultHubEndpoint})

Environment:
  HF_TOKEN             access token for gated or private repositories (sent to the hub only)
  HF_ENDPOINT          default for --endpoint

Example:
  clipmod model fetch Xenova/clip-vit-base-patch32 --out models/clip-b32 --variant quantized`;

export const modelFetchCommand: CliCommand = {
  path: ['model', 'fetch'],
  summary: 'download a CLIP model from the Hugging Face hub (resumable, checksum-verified)',
  help,
  async run(args, io) {
    const { values, positionals } = parseCommandArgs(args, {
      out: { type: 'string' },
      revision: { type: 'string', default: 'main' },
      variant: { type: 'string', default: 'fp32' },
      endpoint: { type: 'string' },
    });
    if (positionals.length > 1) throw new UsageError(`expected one REPO, got ${positionals.join(' ')}`);
    if (values.out === undefined || values.out === '') throw new UsageError('--out DIR is required');
    const result = await fetchModel({
      repo: positionals[0] ?? defaultModelRepo,
      revision: values.revision,
      variant: parseVariant(values.variant),
      outDir: values.out,
      endpoint: values.endpoint ?? nonEmpty(io.env.HF_ENDPOINT) ?? defaultHubEndpoint,
      token: nonEmpty(io.env.HF_TOKEN),
      onProgress: progressFor(io),
    });
    const fetched = result.files.filter((file) => file.outcome === 'downloaded').length;
    const present = result.files.length - fetched;
    io.stdout.write(
      `${result.folder}: commit ${result.commit}, ${fetched} downloaded, ${present} already present\n`,
    );
    return 0;
  },
};

function parseVariant(value: string): ModelVariant {
  const variant = modelVariants.find((candidate) => candidate === value);
  if (variant === undefined) throw new UsageError(`--variant must be one of ${modelVariants.join(', ')}`);
  return variant;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

function progressFor(io: CliIo) {
  const stderr = io.stderr as CliIo['stderr'] & { isTTY?: boolean; columns?: number };
  return createProgressRenderer({
    write: (text) => stderr.write(text),
    isTty: stderr.isTTY === true,
    columns: stderr.columns,
  });
}
