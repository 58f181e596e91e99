import { readFile } from 'node:fs/promises';
import {
  defaultPromptTemplate,
  type ExecutionProviderChoice,
  ensembleClassEmbeddings,
  executionProviderChoices,
  expandPrompts,
  type LabelScore,
  loadClipModel,
  preprocessImage,
  rankLabels,
  zeroShotProbabilities,
} from '../../shared/clip/index.ts';
import { ClipmodError } from '../../shared/errors/index.ts';
import { type CliCommand, type CliIo, UsageError } from './command.ts';
import { parseCommandArgs } from './parse-args.ts';

const help = `Usage: clipmod classify IMAGE --model DIR --labels "a,b,c" [options]

Zero-shot classification of one image, like the transformers zero-shot-image-classification
pipeline: softmax over the labels at the model's logit scale, highest first.

Options:
  --model DIR         model folder (default: $MODEL_DIR)
  --labels LIST       comma-separated candidate labels (at least one)
  --template TEXT     prompt template with {} for the label (default "${defaultPromptTemplate}");
                      repeat it to average an ensemble of templates per label
  --mode exact|fast   preprocessing: exact (Hugging Face parity, default) or fast
  --provider NAME     cpu (default), cuda, tensorrt or auto (GPU first, CPU fallback)
  --json              print a JSON array of {label, score} instead of lines

Example:
  clipmod classify cat.jpg --model .cache/models/color --labels "a red image,a green image"`;

const options = {
  model: { type: 'string' },
  labels: { type: 'string' },
  template: { type: 'string', multiple: true },
  mode: { type: 'string', default: 'exact' },
  provider: { type: 'string', default: 'cpu' },
  json: { type: 'boolean', default: false },
} as const;

type ClassifyRequest = {
  imagePath: string;
  modelDir: string;
  labels: string[];
  templates: string[];
  mode: 'exact' | 'fast';
  provider: ExecutionProviderChoice;
  isJson: boolean;
};

export const classifyCommand: CliCommand = {
  path: ['classify'],
  summary: 'zero-shot probabilities of labels for one image',
  help,
  async run(args, io) {
    const request = parseRequest(args, io);
    const scores = await classifyImage(request);
    io.stdout.write(formatScores(scores, request.isJson));
    return 0;
  },
};

function parseRequest(args: readonly string[], io: CliIo): ClassifyRequest {
  const { values, positionals } = parseCommandArgs(args, options);
  if (positionals.length !== 1) throw new UsageError('classify takes exactly one IMAGE path');
  const modelDir = values.model ?? io.env.MODEL_DIR;
  if (modelDir === undefined || modelDir === '')
    throw new UsageError('--model DIR is required (or set MODEL_DIR)');
  if (values.labels === undefined) throw new UsageError('--labels "a,b,c" is required');
  const labels = values.labels
    .split(',')
    .map((label) => label.trim())
    .filter((label) => label !== '');
  if (labels.length === 0) throw new UsageError('--labels needs at least one non-empty label');
  if (values.mode !== 'exact' && values.mode !== 'fast') throw new UsageError('--mode must be exact or fast');
  const provider = executionProviderChoices.find((choice) => choice === values.provider);
  if (provider === undefined)
    throw new UsageError(`--provider must be one of ${executionProviderChoices.join(', ')}`);
  return {
    imagePath: positionals[0]!,
    modelDir,
    labels,
    templates: values.template ?? [defaultPromptTemplate],
    mode: values.mode,
    provider,
    isJson: values.json,
  };
}

async function classifyImage(request: ClassifyRequest): Promise<LabelScore[]> {
  const prompts = expandPrompts(request.labels, request.templates);
  const bytes = await readImage(request.imagePath);
  const model = await loadClipModel(request.modelDir, { provider: request.provider });
  try {
    const pixels = await preprocessImage(bytes, {
      mode: request.mode,
      orientation: 'exif',
      config: model.preprocessorConfig,
    });
    const image = await model.encodeImages(pixels, 1);
    const promptEmbeddings = await model.encodeTexts(prompts);
    const classes = ensembleClassEmbeddings(promptEmbeddings, model.embeddingDim, request.templates.length);
    const probabilities = zeroShotProbabilities(image, classes, model.embeddingDim, model.logitScale);
    return rankLabels(request.labels, probabilities);
  } finally {
    await model.close();
  }
}

async function readImage(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (error) {
    throw new ClipmodError('bad_request', `cannot read image ${path}: ${(error as Error).message}`, {
      details: { field: 'IMAGE' },
      cause: error,
    });
  }
}

function formatScores(scores: readonly LabelScore[], isJson: boolean): string {
  if (isJson) return `${JSON.stringify(scores)}\n`;
  return scores.map(({ label, score }) => `${label}\t${score.toFixed(4)}\n`).join('');
}
