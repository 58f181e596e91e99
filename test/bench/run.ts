// `npm run bench`: every figure as a ratio to a baseline measured in the same run (PERFORMANCE.md), on
// the vit-b-32 model and ≈ 2.8 MP photographs generated from the reference images. Sections:
//   preprocess  exact and fast preprocessing ÷ a raw sharp resize loop
//   onnx        image-encoder img/s by batch size ÷ the best batch
//   peer        transformers.js on the same model folder and photos; tensor |Δ| against the goldens
//   service     end to end through the API ÷ a raw decode + ONNX loop; batch fill; latency
//   intake      API intake req/s (100 KB images) ÷ raw BullMQ add
// Writes JSON and Markdown under .cache/bench/; a full run also replaces test/bench/results.{json,md}.
// Not part of `npm test`: no figure here is asserted.
import { parseArgs } from 'node:util';
import { loadClipModel } from '../../shared/clip/index.ts';
import { goldenBytes, largePhotoJpegs } from '../helpers/images.ts';
import { builtModel } from '../helpers/models.ts';
import { BenchReport, type SectionContext } from './bench-report.ts';
import { formatSummary, machineFacts, type Summary } from './bench-stats.ts';
import { intakeSection } from './intake-bench.ts';
import { onnxSection } from './onnx-bench.ts';
import { preprocessSection } from './preprocess-bench.ts';
import { searchSection } from './search-bench.ts';
import { benchPolicy, reportServiceProfile, serviceSection } from './service-section.ts';
import { transformersJsSection } from './transformersjs-bench.ts';

const allSections = ['preprocess', 'onnx', 'peer', 'service', 'intake', 'search'];
const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    sections: { type: 'string', default: allSections.join(',') },
    runs: { type: 'string' },
    /** Default: the best batch of the onnx section (8 when it does not run). */
    'batch-size': { type: 'string' },
    /** Extra settings for the service under test, e.g. CLIPMOD_INTRA_OP_THREADS=1,CLIPMOD_PREPROCESS_MODE=fast */
    'service-env': { type: 'string', default: '' },
    /** Writes the service process's CPU profiles (.cpuprofile, one per thread) to this folder. */
    'profile-service': { type: 'string' },
  },
});
const sections = new Set(args.sections.split(','));
const unknown = [...sections].filter((name) => !allSections.includes(name));
if (unknown.length > 0)
  throw new Error(`unknown sections ${unknown.join(', ')}; known: ${allSections.join(', ')}`);
const isQuick = args.quick;
const serviceEnv = Object.fromEntries(
  args['service-env']
    .split(',')
    .filter(Boolean)
    // Split at the first '=' only: values may hold one (NODE_OPTIONS=--cpu-prof-dir=…).
    .map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]),
);
// Only a default run (every section, no overrides) replaces the committed results.
const isFullRun =
  !isQuick &&
  allSections.every((name) => sections.has(name)) &&
  args['batch-size'] === undefined &&
  args['service-env'] === '' &&
  args['profile-service'] === undefined;
const runs = Number(args.runs ?? (isQuick ? 1 : 3));
const profileDir = args['profile-service'];

const report = new BenchReport(machineFacts(), { isQuick, runs, sections: [...sections], serviceEnv });
const context: SectionContext = { report, runs, isQuick, photos: await largePhotoJpegs() };
const goldens = ['astronaut.png', 'chelsea.png', 'rocket.jpg', 'retina.jpg', 'coffee-exif6.jpg'].map(
  goldenBytes,
);
const prompts = [...benchPolicy.labels.flatMap((label) => label.prompts), ...benchPolicy.baseline];
const modelDir = await builtModel('vit-b-32');
const model = await loadClipModel(modelDir, { provider: 'cpu' });

const preprocess = sections.has('preprocess') ? await preprocessSection(context) : undefined;
const onnx = sections.has('onnx') ? await onnxSection(context, model, goldens) : undefined;
const batchSize = Number(args['batch-size'] ?? onnx?.bestBatchSize ?? 8);
const peer = sections.has('peer')
  ? await transformersJsSection(context, model, modelDir, batchSize, prompts)
  : undefined;
const service = sections.has('service')
  ? await serviceSection(context, model, modelDir, batchSize, serviceEnv, profileDir)
  : undefined;
if (service?.servedImages !== undefined && profileDir !== undefined) {
  reportServiceProfile(context, profileDir, service.servedImages);
}
await model.close();
const intake = sections.has('intake') ? await intakeSection(context) : undefined;
if (sections.has('search')) await searchSection(context);

// Sections run minutes apart on a shared machine, so ratios chain pairs measured back to back:
// service ÷ transformers.js = (service ÷ raw loop, section 3) × (raw loop ÷ transformers.js, section 4).
const chained = (a: Summary | undefined, b: Summary | undefined) =>
  a === undefined || b === undefined ? null : a.median * b.median;
const headline = {
  e2e_vs_raw_ratio: service?.e2eVsRawRatio.median ?? null,
  vs_transformersjs_ratio: chained(service?.e2eVsRawRatio, peer?.rawLoopVsDocumentedRatio),
  vs_transformersjs_batched_ratio: chained(service?.e2eVsRawRatio, peer?.rawLoopVsBatchedRatio),
  vs_transformersjs_raw_loop_ratio: peer?.rawLoopVsDocumentedRatio.median ?? null,
  vs_transformersjs_batched_raw_loop_ratio: peer?.rawLoopVsBatchedRatio.median ?? null,
  exact_vs_sharp_raw_ratio: preprocess?.exact?.ratioToSharpRaw.median ?? null,
  fast_vs_sharp_raw_ratio: preprocess?.fast?.ratioToSharpRaw.median ?? null,
  intake_vs_bullmq_add_ratio: intake?.intakeVsRawAddRatio.median ?? null,
  batch_fill: service?.batchFill.median ?? null,
  best_batch_size: onnx?.bestBatchSize ?? null,
};
for (const [key, value] of Object.entries(headline)) report.set(key, value);
report.heading('Headline ratios');
report.table(
  ['ratio', 'value', 'target'],
  [
    ['end to end ÷ raw decode + ONNX loop', service ? formatSummary(service.e2eVsRawRatio) : '—', '≥ 0.9'],
    [
      'clipmod service ÷ transformers.js as documented (batch 1), chained through the raw loop',
      fmt(headline.vs_transformersjs_ratio),
      '≥ 1.5',
    ],
    [
      `clipmod service ÷ transformers.js batched (batch ${batchSize}), chained`,
      fmt(headline.vs_transformersjs_batched_ratio),
      '',
    ],
    ['clipmod raw loop ÷ transformers.js batch 1', fmt(headline.vs_transformersjs_raw_loop_ratio), ''],
    [
      `clipmod raw loop ÷ transformers.js batch ${batchSize}`,
      fmt(headline.vs_transformersjs_batched_raw_loop_ratio),
      '',
    ],
    ['exact preprocessing ÷ raw sharp resize', fmt(headline.exact_vs_sharp_raw_ratio), ''],
    ['API intake ÷ raw BullMQ add', fmt(headline.intake_vs_bullmq_add_ratio), ''],
  ],
);
reportTimeBudget();
const written = report.write(isFullRun);
console.log(`\nwritten: ${written.join(', ')}`);

function fmt(value: number | null): string {
  return value === null ? '—' : value.toFixed(2);
}

/**
 * The CPU budget per image on this machine: exact preprocessing (CPU ms measured in section 1) plus
 * the model (all cores busy for 1/throughput s at the best batch) bounds what decode + inference can
 * reach, which is what limits both the raw loop and the service on a CPU-only host.
 */
function reportTimeBudget(): void {
  const bestOnnx = onnx?.byBatchSize.find((b) => b.batchSize === onnx.bestBatchSize)?.imagesPerSecond.median;
  const preprocessCpuMs = preprocess?.exact?.cpuMsPerImage.median;
  if (bestOnnx === undefined || preprocessCpuMs === undefined) return;
  const { cores } = machineFacts();
  const modelCpuMs = (cores * 1000) / bestOnnx;
  const ceiling = (cores * 1000) / (preprocessCpuMs + modelCpuMs);
  report.heading('Where the time goes (CPU ms per image, this machine)');
  report.table(
    ['work', 'CPU ms / image', 'share'],
    [
      [
        'exact preprocessing (decode + Pillow-exact resize), section 1',
        preprocessCpuMs.toFixed(1),
        share(preprocessCpuMs),
      ],
      [
        `vit-b-32 image encoder at batch ${onnx?.bestBatchSize}, ${cores} cores busy, section 2`,
        modelCpuMs.toFixed(1),
        share(modelCpuMs),
      ],
      ['**ceiling for decode + model**', '', `**${ceiling.toFixed(1)} img/s**`],
      [
        'raw loop measured (section 3)',
        '',
        service ? `${service.rawLoopImagesPerSecond.median.toFixed(1)} img/s` : '—',
      ],
      [
        'service measured (section 3)',
        '',
        service ? `${service.serviceImagesPerSecond.median.toFixed(1)} img/s` : '—',
      ],
    ],
  );
  report.set('timeBudget', { cores, preprocessCpuMs, modelCpuMs, ceilingImagesPerSecond: ceiling });
  function share(ms: number): string {
    return `${Math.round((100 * ms) / (preprocessCpuMs! + modelCpuMs))} %`;
  }
}
