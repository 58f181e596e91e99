// Preprocessing throughput, side by side in one process: `exact`, `fast`, and a raw sharp loop as
// the baseline (PERFORMANCE.md asks for ratios measured in the same run). The bench runner calls
// `benchPreprocess`; it prints nothing itself.
import { availableParallelism } from 'node:os';
import sharp from 'sharp';
import { type PreprocessMode, preprocessImage } from '../../shared/clip/preprocess.ts';
import type { SectionContext } from './bench-report.ts';
import { formatSummary, repeat, type Summary, summarize } from './bench-stats.ts';
import { startPreprocessPool } from './preprocess-pool.ts';

/** `exact-pool`: exact mode in a pool of worker threads, one per core (see preprocess-pool.ts). */
export type PreprocessVariant = PreprocessMode | 'sharp-raw' | 'exact-pool';

export type PreprocessBenchOptions = {
  /** Encoded images, used round-robin. */
  images: readonly Uint8Array[];
  /** Stop each variant after this long (default 3000 ms) ... */
  durationMs?: number;
  /** ... or after this many images, whichever comes first. */
  maxImages?: number;
  /** Images in flight at once (sharp work runs on libuv's pool; size it with UV_THREADPOOL_SIZE). */
  concurrency?: number;
  /** Images processed before timing starts, to warm caches and the JIT (default 4). */
  warmupImages?: number;
  variants?: readonly PreprocessVariant[];
};

export type PreprocessBenchResult = {
  variant: PreprocessVariant;
  concurrency: number;
  images: number;
  seconds: number;
  imagesPerSecond: number;
  /**
   * Process CPU time (all threads, libvips' included) per image: steadier than wall time on a shared
   * machine, and what sizes a worker pool.
   */
  cpuMsPerImage: number;
  /** Throughput relative to the `sharp-raw` run of the same call (when it ran). */
  ratioToSharpRaw: number | null;
};

/** The baseline every comparison is made against: sharp alone, cubic cover-crop to 224, no tensor. */
async function sharpRaw(bytes: Uint8Array): Promise<void> {
  await sharp(bytes).resize(224, 224, { fit: 'cover', kernel: 'cubic' }).raw().toBuffer();
}

type Runner = { run(bytes: Uint8Array): Promise<unknown>; close(): Promise<void> };

function runner(variant: PreprocessVariant): Runner {
  const close = async () => {};
  if (variant === 'sharp-raw') return { run: sharpRaw, close };
  if (variant === 'exact-pool') return startPreprocessPool();
  return { run: (bytes) => preprocessImage(bytes, { mode: variant }), close };
}

async function measure(
  run: (bytes: Uint8Array) => Promise<unknown>,
  images: readonly Uint8Array[],
  limits: { durationMs: number; maxImages: number; concurrency: number },
): Promise<{ images: number; seconds: number; cpuMs: number }> {
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const deadline = started + limits.durationMs;
  let next = 0;
  const lane = async (): Promise<void> => {
    while (performance.now() < deadline && next < limits.maxImages) {
      const index = next++;
      await run(images[index % images.length]!);
    }
  };
  await Promise.all(Array.from({ length: limits.concurrency }, lane));
  const cpu = process.cpuUsage(cpuBefore);
  return {
    images: next,
    seconds: (performance.now() - started) / 1000,
    cpuMs: (cpu.user + cpu.system) / 1000,
  };
}

/** Measures images/s of each variant in turn over the same images and concurrency. */
export async function benchPreprocess(options: PreprocessBenchOptions): Promise<PreprocessBenchResult[]> {
  if (options.images.length === 0) throw new RangeError('benchPreprocess needs at least one image');
  const concurrency = options.concurrency ?? 1;
  const limits = {
    durationMs: options.durationMs ?? 3000,
    maxImages: options.maxImages ?? Number.POSITIVE_INFINITY,
    concurrency,
  };
  const results: PreprocessBenchResult[] = [];
  for (const variant of options.variants ?? (['sharp-raw', 'exact', 'exact-pool', 'fast'] as const)) {
    const { run, close } = runner(variant);
    for (let i = 0; i < (options.warmupImages ?? 4); i++)
      await run(options.images[i % options.images.length]!);
    const { images, seconds, cpuMs } = await measure(run, options.images, limits);
    await close();
    const imagesPerSecond = images / seconds;
    results.push({
      variant,
      concurrency,
      images,
      seconds,
      imagesPerSecond,
      cpuMsPerImage: cpuMs / images,
      ratioToSharpRaw: null,
    });
  }
  const baseline = results.find((result) => result.variant === 'sharp-raw');
  for (const result of results) {
    result.ratioToSharpRaw =
      baseline === undefined ? null : result.imagesPerSecond / baseline.imagesPerSecond;
  }
  return results;
}

export type PreprocessFigures = Record<
  string,
  { imagesPerSecond: Summary; cpuMsPerImage: Summary; ratioToSharpRaw: Summary }
>;

/** Section 1: preprocessing img/s, `exact` and `fast` ÷ a raw sharp resize loop, 4 in flight. */
export async function preprocessSection(context: SectionContext): Promise<PreprocessFigures> {
  const runs = await repeat(context.runs, () =>
    benchPreprocess({ images: context.photos, durationMs: context.isQuick ? 1500 : 3000, concurrency: 4 }),
  );
  const figures: PreprocessFigures = {};
  for (const { variant } of runs[0] ?? []) {
    const of = (pick: (r: PreprocessBenchResult) => number) =>
      summarize(runs.map((run) => pick(run.find((r) => r.variant === variant)!)));
    figures[variant] = {
      imagesPerSecond: of((r) => r.imagesPerSecond),
      cpuMsPerImage: of((r) => r.cpuMsPerImage),
      ratioToSharpRaw: of((r) => r.ratioToSharpRaw ?? Number.NaN),
    };
  }
  const { report } = context;
  report.heading('1. Preprocessing, ≈ 2.8 MP JPEG photos, 4 in flight');
  report.table(
    ['variant', 'img/s', 'CPU ms/img', '÷ raw sharp'],
    Object.entries(figures).map(([variant, f]) => [
      variant,
      formatSummary(f.imagesPerSecond, 1),
      formatSummary(f.cpuMsPerImage, 1),
      formatSummary(f.ratioToSharpRaw),
    ]),
  );
  const pool = figures['exact-pool'];
  const inProcess = figures.exact;
  if (pool !== undefined && inProcess !== undefined) {
    const ratio = pool.imagesPerSecond.median / inProcess.imagesPerSecond.median;
    report.say(
      `exact in a worker-thread pool (${availableParallelism()} threads) ÷ exact on the calling thread: ${ratio.toFixed(2)} (img/s), ${(pool.cpuMsPerImage.median / inProcess.cpuMsPerImage.median).toFixed(2)} (CPU per image).`,
    );
    report.say();
  }
  report.set('preprocess', figures);
  return figures;
}
