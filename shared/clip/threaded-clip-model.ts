// A ClipModel whose sessions live in a worker thread. onnxruntime-node runs session.run synchronously on
// the calling thread, so an in-process batch (hundreds of ms on CPU) stalls the event loop: HTTP answers,
// BullMQ lock renewals and image decoding all wait. Here the caller's thread only copies pixels and
// passes messages; the thread (clip-model-thread.ts) runs one request at a time.
import { Worker } from 'node:worker_threads';
import { ClipmodError } from '../errors/index.ts';
import type { ClipModel, LoadClipModelOptions } from './clip-model.ts';
import type {
  ClipThreadData,
  ClipThreadMessage,
  ClipThreadModelInfo,
  ClipThreadRequest,
  ClipThreadStop,
  WireError,
} from './clip-model-thread.ts';
import type { ProviderLogger } from './execution-providers.ts';

const maxSpareBuffers = 2;
/** 4 MB, about a millisecond of copying: the longest the caller's event loop waits on a pixel copy. */
const copySliceFloats = 1 << 20;

/** A ClipModel plus the hard stop a shutdown deadline needs. */
export type ThreadedClipModel = ClipModel & {
  /**
   * Ends the thread once the run in progress (if any) returns, without the calls queued behind it,
   * which reject with `unavailable` like every later call. For a shutdown that cannot wait for close().
   */
  terminate(): Promise<void>;
};

type Reply = { value: Float32Array | null; spare?: ArrayBuffer };
type Pending = { resolve(value: Reply): void; reject(error: Error): void };
/** A request before the link numbers it; Omit distributed over the union keeps each op's fields. */
type RequestBody = WithoutId<ClipThreadRequest>;
type WithoutId<Request> = Request extends unknown ? Omit<Request, 'id'> : never;

/**
 * Starts a worker thread that loads the model folder with `loadClipModel(folder, options)` and resolves
 * once it is ready. Errors keep their ClipmodError code (e.g. `model_invalid`); log lines written in the
 * thread reach `options.logger`. `encodeImages` copies the pixels it needs, so the caller keeps its
 * array; as with the in-process model, the caller must not write to it until the call settles.
 */
export async function loadThreadedClipModel(
  folder: string,
  options: LoadClipModelOptions = {},
): Promise<ThreadedClipModel> {
  const { logger, ...rest } = options;
  const workerData: ClipThreadData = { folder, options: rest, hasLogger: logger !== undefined };
  const link = new ThreadLink(new Worker(threadBootstrap(), { workerData }), logger);
  try {
    return new WorkerClipModel(link, await link.ready);
  } catch (error) {
    await link.terminate();
    throw error;
  }
}

/**
 * Worker threads inherit neither tsx's loader nor vitest's transform, and a `data:` entry cannot import
 * a bare specifier, so the bootstrap registers tsx by absolute URL before importing the TypeScript entry.
 */
function threadBootstrap(): URL {
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const entry = new URL('./clip-model-thread.ts', import.meta.url).href;
  const source = [
    `import { register } from ${JSON.stringify(tsxApi)};`,
    'register();',
    `await import(${JSON.stringify(entry)});`,
  ].join('\n');
  return new URL(`data:text/javascript,${encodeURIComponent(source)}`);
}

/** Request ids, the pending map and the thread's lifetime; knows nothing about CLIP. */
class ThreadLink {
  readonly ready: Promise<ClipThreadModelInfo>;
  readonly #exited: Promise<void>;
  readonly #worker: Worker;
  readonly #logger: ProviderLogger | undefined;
  readonly #pending = new Map<number, Pending>();
  #resolveReady: (info: ClipThreadModelInfo) => void = () => {};
  #rejectReady: (error: Error) => void = () => {};
  #nextId = 1;
  #crash: Error | undefined;
  #isTerminating = false;
  #exitError: ClipmodError | undefined;

  constructor(worker: Worker, logger: ProviderLogger | undefined) {
    this.#worker = worker;
    this.#logger = logger;
    this.ready = new Promise((resolve, reject) => {
      this.#resolveReady = resolve;
      this.#rejectReady = reject;
    });
    worker.on('message', (message: ClipThreadMessage) => this.#receive(message));
    // 'error' (an uncaught exception in the thread) always comes before 'exit'.
    worker.on('error', (error) => {
      this.#crash = error;
    });
    // A reply that cannot be deserialised would leave its call waiting forever: treat it as a crash.
    worker.on('messageerror', (error) => {
      this.#crash = error;
      void this.terminate();
    });
    this.#exited = new Promise((resolve) => {
      worker.once('exit', (exitCode) => {
        this.#onExit(exitCode);
        resolve();
      });
    });
  }

  /** Rejects at once, without a round trip, once the thread has gone. */
  call(body: RequestBody, transfer: ArrayBuffer[] = []): Promise<Reply> {
    if (this.#exitError) return Promise.reject(this.#exitError);
    const id = this.#nextId++;
    return new Promise<Reply>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      // An idle thread must not keep the process alive, as an idle in-process model would not.
      if (this.#pending.size === 1) this.#worker.ref();
      this.#worker.postMessage({ ...body, id }, transfer);
    });
  }

  get isAlive(): boolean {
    return this.#exitError === undefined;
  }

  /** Never `worker.terminate()`: see ClipThreadStop. A thread that is already ending just ends. */
  async terminate(): Promise<void> {
    if (this.isAlive) {
      this.#isTerminating = true;
      // Held until it has gone, or an otherwise idle process could exit with the thread mid-run.
      this.#worker.ref();
      this.#worker.postMessage({ op: 'terminate' } satisfies ClipThreadStop);
    }
    await this.#exited;
  }

  #receive(message: ClipThreadMessage): void {
    if (message.kind === 'log') {
      this.#logger?.[message.level](message.fields, message.message);
    } else if (message.kind === 'ready') {
      this.#worker.unref();
      this.#resolveReady(message.info);
    } else if (message.kind === 'load-failed') {
      this.#rejectReady(fromWireError(message.error));
    } else {
      const pending = this.#pending.get(message.id);
      this.#pending.delete(message.id);
      if (this.#pending.size === 0 && !this.#isTerminating) this.#worker.unref();
      if (message.kind === 'result') pending?.resolve(message);
      else pending?.reject(fromWireError(message.error));
    }
  }

  #onExit(exitCode: number): void {
    const message = this.#isTerminating
      ? 'clip model thread was terminated'
      : `clip model thread exited (code ${exitCode})${this.#crash ? `: ${this.#crash.message}` : ''}`;
    this.#exitError = new ClipmodError('unavailable', message, { cause: this.#crash });
    this.#rejectReady(this.#exitError);
    for (const pending of this.#pending.values()) pending.reject(this.#exitError);
    this.#pending.clear();
  }
}

class WorkerClipModel implements ThreadedClipModel {
  readonly modelId: ClipModel['modelId'];
  readonly variant: ClipModel['variant'];
  readonly embeddingDim: number;
  readonly logitScale: number;
  readonly provider: ClipModel['provider'];
  readonly preprocessorConfig: ClipModel['preprocessorConfig'];
  readonly pixelsPerImage: number;
  readonly #link: ThreadLink;
  /** Pixel buffers the thread handed back, largest first; see #stagePixels. */
  readonly #spareBuffers: ArrayBuffer[] = [];
  readonly #copyingCalls = new Set<Promise<Reply>>();
  #closing: Promise<void> | undefined;

  constructor(link: ThreadLink, info: ClipThreadModelInfo) {
    this.modelId = info.modelId;
    this.variant = info.variant;
    this.embeddingDim = info.embeddingDim;
    this.logitScale = info.logitScale;
    this.provider = info.provider;
    this.preprocessorConfig = info.preprocessorConfig;
    this.pixelsPerImage = info.pixelsPerImage;
    this.#link = link;
  }

  async encodeImages(pixels: Float32Array, count: number): Promise<Float32Array> {
    this.#assertOpen();
    const length = count * this.pixelsPerImage;
    if (!Number.isInteger(count) || count < 0 || pixels.length < length) {
      throw new RangeError(`encodeImages: ${count} images need ${length} floats, got ${pixels.length}`);
    }
    if (count === 0) return new Float32Array(0);
    const call = this.#copyAndSend(pixels, length, count);
    this.#copyingCalls.add(call);
    try {
      return this.#expectRows(await call);
    } finally {
      this.#copyingCalls.delete(call);
    }
  }

  async encodeTexts(texts: readonly string[]): Promise<Float32Array> {
    this.#assertOpen();
    return this.#expectRows(await this.#link.call({ op: 'encodeTexts', texts }));
  }

  async warmUp(): Promise<void> {
    this.#assertOpen();
    await this.#link.call({ op: 'warmUp' });
  }

  /** Lets calls already made finish (the thread answers in order), then ends the thread. */
  close(): Promise<void> {
    this.#closing ??= this.#closeThread();
    return this.#closing;
  }

  /** Later calls reject with `unavailable`, as after a crash; close() still resolves. */
  async terminate(): Promise<void> {
    await this.#link.terminate();
  }

  async #closeThread(): Promise<void> {
    // Image calls still copying have not reached the thread's queue yet; they go before the close.
    await Promise.allSettled(this.#copyingCalls);
    // A thread that already died has no sessions left to release.
    if (this.#link.isAlive) await this.#link.call({ op: 'close' }).catch(() => undefined);
    await this.#link.terminate();
  }

  async #copyAndSend(pixels: Float32Array, length: number, count: number): Promise<Reply> {
    const staged = await this.#stagePixels(pixels, length);
    const reply = await this.#link.call({ op: 'encodeImages', pixels: staged, count }, [staged.buffer]);
    if (reply.spare) this.#keepSpare(reply.spare);
    return reply;
  }

  /**
   * The caller may pass a view on a larger buffer or keep using its array, so the thread gets a copy.
   * A recycled buffer's pages are already mapped (a fresh one made the copy 5x slower, measured), and
   * the copy goes in slices with a turn of the event loop between them: a 128-image batch is 77 MB,
   * tens of ms in one piece on a busy machine.
   */
  async #stagePixels(pixels: Float32Array, length: number): Promise<Float32Array<ArrayBuffer>> {
    // Largest first, so the last one that fits is the smallest that does.
    const index = this.#spareBuffers.findLastIndex((buffer) => buffer.byteLength >= length * 4);
    const buffer = index === -1 ? new ArrayBuffer(length * 4) : this.#spareBuffers.splice(index, 1)[0]!;
    const staged = new Float32Array(buffer, 0, length);
    for (let start = 0; start < length; start += copySliceFloats) {
      if (start > 0) await new Promise((resolve) => setImmediate(resolve));
      staged.set(pixels.subarray(start, Math.min(length, start + copySliceFloats)), start);
    }
    return staged;
  }

  #keepSpare(buffer: ArrayBuffer): void {
    this.#spareBuffers.push(buffer);
    this.#spareBuffers.sort((a, b) => b.byteLength - a.byteLength);
    // Enough for two batches in flight; more would only hold memory.
    this.#spareBuffers.length = Math.min(this.#spareBuffers.length, maxSpareBuffers);
  }

  #expectRows(reply: Reply): Float32Array {
    if (reply.value === null) throw new Error('clip model thread answered an encode call without embeddings');
    return reply.value;
  }

  #assertOpen(): void {
    if (this.#closing) throw new Error(`clip model ${this.modelId} is closed`);
  }
}

function fromWireError(wire: WireError): Error {
  const cause = wire.cause === undefined ? undefined : new Error(wire.cause);
  const error =
    wire.code === undefined
      ? new Error(wire.message, { cause })
      : new ClipmodError(wire.code, wire.message, {
          details: wire.details,
          retryAfterSeconds: wire.retryAfterSeconds,
          cause,
        });
  if (wire.code === undefined) error.name = wire.name;
  // Where it was thrown, in the thread, says more than where the reply arrived.
  if (wire.stack !== undefined) error.stack = wire.stack;
  return error;
}
