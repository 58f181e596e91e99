// Section 4: the same model folder and photographs through transformers.js, the peer a Node developer
// would reach for, used the way its documentation shows (AutoProcessor + CLIPVisionModelWithProjection,
// prompts embedded once with CLIPTextModelWithProjection). Remote models are off and any HTTP request
// made while it runs fails the section: it must read the local folder only.
import { basename, dirname } from 'node:path';
import {
  AutoProcessor,
  AutoTokenizer,
  CLIPTextModelWithProjection,
  CLIPVisionModelWithProjection,
  env,
  RawImage,
} from '@huggingface/transformers';
import { type ClipModel, preprocessImage } from '../../shared/clip/index.ts';
import { GOLDEN_DIR, goldenBytes, goldenManifest, goldenTensor } from '../helpers/images.ts';
import type { SectionContext } from './bench-report.ts';
import { formatSummary, repeat, type Summary, summarize } from './bench-stats.ts';
import { benchRawLoop } from './onnx-bench.ts';

type Processor = (images: RawImage | RawImage[]) => Promise<{ pixel_values: { data: Float32Array } }>;
type TensorOutput = { data: Float32Array; dims: number[] };
type Model = ((inputs: unknown) => Promise<Record<string, TensorOutput>>) & { dispose(): Promise<unknown> };

export type TransformersJsPeer = {
  processor: Processor;
  vision: Model;
  /** The prompts' embeddings, computed once as clipmod caches them. */
  promptEmbeddings: TensorOutput;
  /** HTTP requests transformers.js attempted (each one was refused). */
  networkAttempts: () => number;
  close(): Promise<void>;
};

/** Refuses every http(s) fetch until `restore`; transformers.js reads local paths through fs, not fetch. */
function refuseNetwork() {
  const original = globalThis.fetch;
  let attempts = 0;
  globalThis.fetch = async (input, init) => {
    const url = input instanceof Request ? input.url : String(input);
    if (!/^https?:/i.test(url)) return original(input, init);
    attempts += 1;
    throw new Error(`transformers.js tried the network (${url}) with remote models off`);
  };
  return { attempts: () => attempts, restore: () => (globalThis.fetch = original) };
}

export async function loadTransformersJs(
  modelDir: string,
  prompts: readonly string[],
): Promise<TransformersJsPeer> {
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.localModelPath = `${dirname(modelDir)}/`;
  env.useFSCache = false;
  if (env.allowRemoteModels !== false) throw new Error('transformers.js: remote models are still allowed');
  const guard = refuseNetwork();
  const id = basename(modelDir);
  const options = { dtype: 'fp32', device: 'cpu' } as const;
  const processor = (await AutoProcessor.from_pretrained(id)) as unknown as Processor;
  const vision = (await CLIPVisionModelWithProjection.from_pretrained(id, options)) as unknown as Model;
  const text = (await CLIPTextModelWithProjection.from_pretrained(id, options)) as unknown as Model;
  const tokenizer = (await AutoTokenizer.from_pretrained(id)) as unknown as (
    texts: string[],
    options: object,
  ) => unknown;
  const { text_embeds } = await text(tokenizer([...prompts], { padding: true, truncation: true }));
  await text.dispose();
  return {
    processor,
    vision,
    promptEmbeddings: text_embeds!,
    networkAttempts: guard.attempts,
    async close() {
      await vision.dispose();
      guard.restore();
    },
  };
}

/** Cosine scores of each image against each prompt: the zero-shot step after the model. */
function scoreAgainstPrompts(images: TensorOutput, prompts: TensorOutput): number[] {
  const [count = 0, dim = 0] = images.dims;
  const promptCount = prompts.dims[0] ?? 0;
  const scores: number[] = [];
  for (let i = 0; i < count; i++) {
    for (let p = 0; p < promptCount; p++) {
      let dot = 0;
      for (let d = 0; d < dim; d++) dot += images.data[i * dim + d]! * prompts.data[p * dim + d]!;
      scores.push(dot);
    }
  }
  return scores;
}

type PeerRun = { imagesPerSecond: number; decodeMs: number; processorMs: number; modelMs: number };

/** `total` photos, `batchSize` per processor + model call (1 is the documented usage); phases timed apart. */
async function peerThroughput(
  peer: TransformersJsPeer,
  photos: readonly Uint8Array[],
  total: number,
  batchSize: number,
): Promise<PeerRun> {
  const spent = { decodeMs: 0, processorMs: 0, modelMs: 0 };
  const started = performance.now();
  let mark = started;
  const lap = (phase: keyof typeof spent) => {
    const now = performance.now();
    spent[phase] += now - mark;
    mark = now;
  };
  for (let done = 0; done < total; done += batchSize) {
    const count = Math.min(batchSize, total - done);
    const images = await Promise.all(
      Array.from({ length: count }, (_, i) =>
        RawImage.fromBlob(new Blob([photos[(done + i) % photos.length]! as Uint8Array<ArrayBuffer>])),
      ),
    );
    lap('decodeMs');
    const inputs = await peer.processor(count === 1 ? images[0]! : images);
    lap('processorMs');
    const { image_embeds } = await peer.vision(inputs);
    scoreAgainstPrompts(image_embeds!, peer.promptEmbeddings);
    lap('modelMs');
  }
  return {
    imagesPerSecond: total / ((performance.now() - started) / 1000),
    decodeMs: spent.decodeMs / total,
    processorMs: spent.processorMs / total,
    modelMs: spent.modelMs / total,
  };
}

function meanAbsDelta(actual: Float32Array, expected: Float32Array): number {
  if (actual.length !== expected.length) return Number.NaN;
  let sum = 0;
  for (let i = 0; i < expected.length; i++) sum += Math.abs(actual[i]! - expected[i]!);
  return sum / expected.length;
}

export type TensorDelta = { golden: string; clipmod: number; transformersJs: number | null };

/**
 * Mean |Δ| of each one's pixel_values against every golden. transformers.js always applies the EXIF
 * orientation, so it is compared with the upright golden of coffee-exif6 only.
 */
async function tensorDeltas(peer: TransformersJsPeer): Promise<TensorDelta[]> {
  const deltas: TensorDelta[] = [];
  for (const entry of goldenManifest()) {
    const expected = goldenTensor(entry.golden);
    const orientation = entry.exif_transposed ? 'exif' : 'raw';
    const ours = await preprocessImage(goldenBytes(entry.file), { orientation });
    const isComparable =
      entry.exif_transposed || !goldenManifest().some((e) => e.file === entry.file && e.exif_transposed);
    let theirs: number | null = null;
    if (isComparable) {
      const inputs = await peer.processor(await RawImage.read(`${GOLDEN_DIR}${entry.file}`));
      theirs = meanAbsDelta(inputs.pixel_values.data, expected);
    }
    deltas.push({ golden: entry.golden, clipmod: meanAbsDelta(ours, expected), transformersJs: theirs });
  }
  return deltas;
}

export type TransformersJsFigures = {
  imagesPerSecondBatch1: Summary;
  imagesPerSecondBatched: Summary;
  /** Wall ms per image of the batched runs: RawImage decode, processor, model + scoring. */
  batchedSplit: { decodeMs: Summary; processorMs: Summary; modelMs: Summary };
  batchSize: number;
  /** clipmod's raw decode + ONNX loop at the same batch size, run right after each peer run. */
  clipmodRawLoop: Summary;
  /** Per run: clipmod's raw loop ÷ the peer used as documented (one image per call). */
  rawLoopVsDocumentedRatio: Summary;
  /** Per run: clipmod's raw loop ÷ the peer batched like clipmod (the stricter comparison). */
  rawLoopVsBatchedRatio: Summary;
  networkAttempts: number;
  tensorDeltas: TensorDelta[];
};

export async function transformersJsSection(
  context: SectionContext,
  model: ClipModel,
  modelDir: string,
  batchSize: number,
  prompts: readonly string[],
): Promise<TransformersJsFigures> {
  const peer = await loadTransformersJs(modelDir, prompts);
  try {
    const total = context.isQuick ? 8 : 24;
    await peerThroughput(peer, context.photos, 2, 1); // warm-up
    const batchedTotal = Math.max(total, batchSize);
    const runs = await repeat(context.runs, async () => {
      const single = await peerThroughput(peer, context.photos, total, 1);
      const batched = await peerThroughput(peer, context.photos, batchedTotal, batchSize);
      const clipmod = await benchRawLoop(model, context.photos, batchSize, batchedTotal);
      return { single, batched, clipmod: clipmod.imagesPerSecond };
    });
    const figures: TransformersJsFigures = {
      imagesPerSecondBatch1: summarize(runs.map((r) => r.single.imagesPerSecond)),
      imagesPerSecondBatched: summarize(runs.map((r) => r.batched.imagesPerSecond)),
      batchedSplit: {
        decodeMs: summarize(runs.map((r) => r.batched.decodeMs)),
        processorMs: summarize(runs.map((r) => r.batched.processorMs)),
        modelMs: summarize(runs.map((r) => r.batched.modelMs)),
      },
      batchSize,
      clipmodRawLoop: summarize(runs.map((r) => r.clipmod)),
      rawLoopVsDocumentedRatio: summarize(runs.map((r) => r.clipmod / r.single.imagesPerSecond)),
      rawLoopVsBatchedRatio: summarize(runs.map((r) => r.clipmod / r.batched.imagesPerSecond)),
      networkAttempts: peer.networkAttempts(),
      tensorDeltas: await tensorDeltas(peer),
    };
    if (figures.networkAttempts > 0) throw new Error('transformers.js attempted the network');
    report(context, figures);
    return figures;
  } finally {
    await peer.close();
  }
}

function report(context: SectionContext, figures: TransformersJsFigures): void {
  const { report } = context;
  report.heading('4. transformers.js on the same model folder and photos (remote models off)');
  report.table(
    ['loop', 'img/s'],
    [
      ['batch 1 (documented usage)', formatSummary(figures.imagesPerSecondBatch1, 1)],
      [
        `batch ${figures.batchSize} (processor and model on arrays)`,
        formatSummary(figures.imagesPerSecondBatched, 1),
      ],
      [
        `clipmod raw decode (exact) + ONNX loop, batch ${figures.batchSize}, right after`,
        formatSummary(figures.clipmodRawLoop, 1),
      ],
      [
        '**clipmod raw loop ÷ transformers.js batch 1**',
        `**${formatSummary(figures.rawLoopVsDocumentedRatio)}**`,
      ],
      [
        `**clipmod raw loop ÷ transformers.js batch ${figures.batchSize}**`,
        `**${formatSummary(figures.rawLoopVsBatchedRatio)}**`,
      ],
    ],
  );
  const split = figures.batchedSplit;
  report.say(
    `transformers.js batched, wall ms per image: RawImage decode ${formatSummary(split.decodeMs, 1)}, processor ${formatSummary(split.processorMs, 1)}, model ${formatSummary(split.modelMs, 1)}.`,
  );
  report.say();
  const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
  const theirs = figures.tensorDeltas.flatMap((d) => (d.transformersJs === null ? [] : [d.transformersJs]));
  report.say(
    'Mean |Δ| of pixel_values against the Hugging Face CLIPImageProcessor goldens (one uint8 step ≈ 0.015):',
  );
  report.say();
  report.table(
    ['golden', 'clipmod exact', 'transformers.js'],
    [
      ...figures.tensorDeltas.map((d) => [
        d.golden,
        d.clipmod.toFixed(4),
        d.transformersJs === null ? 'n/a (always upright)' : d.transformersJs.toFixed(4),
      ]),
      ['**mean**', mean(figures.tensorDeltas.map((d) => d.clipmod)).toFixed(4), mean(theirs).toFixed(4)],
    ],
  );
  report.set('transformersJs', figures);
}
