// Preprocessing throughput, side by side in one process: `exact`, `fast`, and a raw sharp loop as
// the baseline (PERFORMANCE.md asks for ratios measured in the same run). The bench runner calls
// `benchPreprocess`; it prints nothing itself.
import sharp from 'sharp';
import { type PreprocessMode, preprocessImage } from '../../shared/clip/preprocess.ts';

export type PreprocessVariant = PreprocessMode | 'sharp-raw';

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

function runner(variant: PreprocessVariant): (bytes: Uint8Array) => Promise<unknown> {
  if (variant === 'sharp-raw') return sharpRaw;
  return (bytes) => preprocessImage(bytes, { mode: variant });
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
  for (const variant of options.variants ?? (['sharp-raw', 'exact', 'fast'] as const)) {
    const run = runner(variant);
    for (let i = 0; i < (options.warmupImages ?? 4); i++)
      await run(options.images[i % options.images.length]!);
    const { images, seconds, cpuMs } = await measure(run, options.images, limits);
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
