// A measurement, not a product feature: `exact` preprocessing spread over a pool of worker threads
// (one per core), to learn whether moving the resampler off the main thread would raise throughput.
// The same file is the pool (imported by the bench) and the worker body (loaded in each thread).
import { availableParallelism } from 'node:os';
import { isMainThread, parentPort, Worker } from 'node:worker_threads';
import { preprocessToCrop } from '../../shared/clip/index.ts';

type Request = { id: number; bytes: Uint8Array };
type Reply = { id: number; rgb?: Uint8Array; error?: string };

if (!isMainThread && parentPort !== null) {
  const port = parentPort;
  port.on('message', ({ id, bytes }: Request) => {
    preprocessToCrop(bytes).then(
      (crop) => port.postMessage({ id, rgb: crop.rgb } satisfies Reply, [crop.rgb.buffer as ArrayBuffer]),
      (error: Error) => port.postMessage({ id, error: error.message } satisfies Reply),
    );
  });
}

/** Worker threads do not inherit tsx's loader: register it before importing this file. */
function bootstrap(): URL {
  const source = [
    `import { register } from ${JSON.stringify(import.meta.resolve('tsx/esm/api'))};`,
    'register();',
    `await import(${JSON.stringify(import.meta.url)});`,
  ].join('\n');
  return new URL(`data:text/javascript,${encodeURIComponent(source)}`);
}

export type PreprocessPool = { run(bytes: Uint8Array): Promise<Uint8Array>; close(): Promise<void> };

/** `size` threads (default: one per core), requests spread round-robin. */
export function startPreprocessPool(size = availableParallelism()): PreprocessPool {
  const pending = new Map<number, { resolve(rgb: Uint8Array): void; reject(error: Error): void }>();
  const workers = Array.from({ length: size }, () => {
    const worker = new Worker(bootstrap());
    worker.on('message', ({ id, rgb, error }: Reply) => {
      const waiter = pending.get(id);
      pending.delete(id);
      if (rgb !== undefined) waiter?.resolve(rgb);
      else waiter?.reject(new Error(error ?? 'preprocess worker failed'));
    });
    return worker;
  });
  let nextId = 0;
  return {
    run(bytes) {
      const id = nextId++;
      const copy = bytes.slice();
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        workers[id % size]!.postMessage({ id, bytes: copy } satisfies Request, [copy.buffer]);
      });
    },
    async close() {
      await Promise.all(workers.map((worker) => worker.terminate()));
    },
  };
}
