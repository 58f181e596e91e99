// Worker-thread entry of the threaded CLIP model (see threaded-clip-model.ts, which starts it). It loads
// the model through clip-model.ts, so onnxruntime's synchronous session.run blocks this thread instead
// of the parent's event loop, and answers the parent's requests one at a time.
import { type MessagePort, parentPort, workerData } from 'node:worker_threads';
import { ClipmodError, type ErrorCode } from '../errors/index.ts';
import { type ClipModel, type LoadClipModelOptions, loadClipModel } from './clip-model.ts';
import type { ProviderLogger } from './execution-providers.ts';

/** What the parent passes as `workerData`; a logger cannot cross threads, so only whether there is one. */
export type ClipThreadData = {
  folder: string;
  options: Omit<LoadClipModelOptions, 'logger'>;
  hasLogger: boolean;
};

/** The model's read-only facts, sent once when it has loaded. */
export type ClipThreadModelInfo = Pick<
  ClipModel,
  'modelId' | 'variant' | 'embeddingDim' | 'logitScale' | 'provider' | 'preprocessorConfig' | 'pixelsPerImage'
>;

/** `pixels`' buffer is transferred with the request and comes back, as `spare`, with the answer. */
export type ClipThreadRequest =
  | { id: number; op: 'encodeImages'; pixels: Float32Array; count: number }
  | { id: number; op: 'encodeTexts'; texts: readonly string[] }
  | { id: number; op: 'warmUp' }
  | { id: number; op: 'close' };

/**
 * Ends the thread without running queued requests. Handled on arrival rather than queued: a message is
 * only delivered between runs, while tearing the thread down mid-run (the parent's `worker.terminate()`
 * or `process.exit()`) aborts the whole process in onnxruntime-node 1.30 (uncaught Napi::Error, exit 134).
 */
export type ClipThreadStop = { op: 'terminate' };

/** An error flattened for postMessage, which would drop a ClipmodError's code and details. */
export type WireError = {
  name: string;
  message: string;
  stack?: string;
  code?: ErrorCode;
  details?: Record<string, unknown>;
  retryAfterSeconds?: number;
  cause?: string;
};

export type ClipThreadMessage =
  | { kind: 'ready'; info: ClipThreadModelInfo }
  | { kind: 'load-failed'; error: WireError }
  | { kind: 'result'; id: number; value: Float32Array | null; spare?: ArrayBuffer }
  | { kind: 'failed'; id: number; error: WireError }
  | { kind: 'log'; level: 'info' | 'warn'; fields: object; message: string };

if (parentPort === null) throw new Error('clip-model-thread.ts runs only as a worker thread');
await serveModel(parentPort, workerData as ClipThreadData);

async function serveModel(port: MessagePort, data: ClipThreadData): Promise<void> {
  const send = (message: ClipThreadMessage, transfer: ArrayBuffer[] = []) =>
    port.postMessage(message, transfer);
  let model: ClipModel;
  try {
    const logger = data.hasLogger ? forwardingLogger(send) : undefined;
    model = await loadClipModel(data.folder, { ...data.options, ...(logger ? { logger } : {}) });
  } catch (error) {
    // Nothing else holds the thread open, so it ends after this message.
    send({ kind: 'load-failed', error: toWireError(error) });
    return;
  }
  // One request at a time: a close must not release the sessions under a run that is still queued.
  let queue = Promise.resolve();
  port.on('message', (request: ClipThreadRequest | ClipThreadStop) => {
    if (request.op === 'terminate') process.exit(1);
    else queue = queue.then(() => answer(model, request, send));
  });
  send({ kind: 'ready', info: describeModel(model) });
}

async function answer(
  model: ClipModel,
  request: ClipThreadRequest,
  send: (message: ClipThreadMessage, transfer?: ArrayBuffer[]) => void,
): Promise<void> {
  let value: Float32Array | null;
  try {
    value = await perform(model, request);
  } catch (error) {
    const wire = toWireError(error);
    try {
      send({ kind: 'failed', id: request.id, error: wire });
    } catch {
      // Details that cannot be cloned must not turn a failed call into a dead thread.
      send({ kind: 'failed', id: request.id, error: { ...wire, details: {} } });
    }
    return;
  }
  // Image embeddings may be a view on onnxruntime's output buffer: hand over a buffer of our own.
  const owned = value === null || ownsItsBuffer(value) ? value : value.slice();
  const transfer = owned === null ? [] : [owned.buffer as ArrayBuffer];
  const pixels = request.op === 'encodeImages' ? request.pixels.buffer : undefined;
  if (!(pixels instanceof ArrayBuffer))
    return send({ kind: 'result', id: request.id, value: owned }, transfer);
  // The run is over, so onnxruntime no longer reads the pixels: the parent refills this buffer next time.
  send({ kind: 'result', id: request.id, value: owned, spare: pixels }, [...transfer, pixels]);
}

function perform(model: ClipModel, request: ClipThreadRequest): Promise<Float32Array | null> {
  switch (request.op) {
    case 'encodeImages':
      return model.encodeImages(request.pixels, request.count);
    case 'encodeTexts':
      return model.encodeTexts(request.texts);
    case 'warmUp':
      return model.warmUp().then(() => null);
    case 'close':
      return model.close().then(() => null);
  }
}

function ownsItsBuffer(array: Float32Array): boolean {
  return (
    array.byteOffset === 0 &&
    array.byteLength === array.buffer.byteLength &&
    array.buffer instanceof ArrayBuffer
  );
}

function forwardingLogger(send: (message: ClipThreadMessage) => void): ProviderLogger {
  const forward = (level: 'info' | 'warn') => (fields: object, message: string) => {
    try {
      send({ kind: 'log', level, fields, message });
    } catch {
      // A field postMessage cannot clone must not fail the model load it describes.
      const printable = Object.fromEntries(
        Object.entries(fields).map(([key, value]) => [key, String(value)]),
      );
      send({ kind: 'log', level, fields: printable, message });
    }
  };
  return { info: forward('info'), warn: forward('warn') };
}

function describeModel(model: ClipModel): ClipThreadModelInfo {
  const { modelId, variant, embeddingDim, logitScale, provider, preprocessorConfig, pixelsPerImage } = model;
  return { modelId, variant, embeddingDim, logitScale, provider, preprocessorConfig, pixelsPerImage };
}

function toWireError(error: unknown): WireError {
  if (!(error instanceof Error)) return { name: 'Error', message: String(error) };
  const wire: WireError = { name: error.name, message: error.message };
  if (error.stack !== undefined) wire.stack = error.stack;
  if (error.cause !== undefined)
    wire.cause = error.cause instanceof Error ? error.cause.message : String(error.cause);
  if (error instanceof ClipmodError) {
    wire.code = error.code;
    wire.details = error.details;
    if (error.retryAfterSeconds !== undefined) wire.retryAfterSeconds = error.retryAfterSeconds;
  }
  return wire;
}
