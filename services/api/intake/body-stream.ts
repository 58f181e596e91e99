// Reading a request body under a byte limit. Bytes are counted as they arrive and reading stops at
// the limit, so a client can never make the server hold more than the limit plus the chunk that
// crossed it; a declared Content-Length over the limit is refused before a byte is read.

import type { Request } from 'express';
import { ClipmodError } from '../../../shared/errors/index.ts';

export type BodyLimit = {
  maxBytes: number;
  /** `payload_too_large` for a whole body, `image_too_large` where the bytes are the image. */
  code: 'payload_too_large' | 'image_too_large';
  /** What is limited, for the message: `request body`, `image`. */
  subject: string;
};

export function limitExceeded(limit: BodyLimit): ClipmodError {
  const subject = limit.subject.charAt(0).toUpperCase() + limit.subject.slice(1);
  return new ClipmodError(limit.code, `${subject} exceeds the limit of ${limit.maxBytes} bytes.`, {
    details: { limit: limit.maxBytes },
  });
}

/**
 * Stops taking body bytes and has the connection closed after the response: what the client still
 * sends stays unread in the socket, and closing it is the only way to answer without reading it.
 */
export function stopReading(req: Request): void {
  req.unpipe();
  req.pause();
  if (req.res !== undefined && !req.res.headersSent) req.res.setHeader('connection', 'close');
}

/** Refuses a declared Content-Length over the limit before a single body byte is read. */
export function refuseDeclaredLength(req: Request, limit: BodyLimit): void {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit.maxBytes) {
    stopReading(req);
    throw limitExceeded(limit);
  }
}

export type BodyPump = {
  /** Resolves at the end of the body; rejects at the limit, on a refused chunk, or on `abort`. */
  finished: Promise<void>;
  /** Stops reading and rejects `finished` with `error` (no-op once settled). */
  abort(error: unknown): void;
};

/**
 * Feeds body chunks to `onChunk` until the end of the body. `onChunk` may throw to refuse what it
 * was given; then, as at the limit, reading stops at once.
 */
export function pumpBody(req: Request, limit: BodyLimit, onChunk: (chunk: Buffer) => void): BodyPump {
  let receivedBytes = 0;
  let isSettled = false;
  let settle: (error?: unknown) => void = () => {};
  const finished = new Promise<void>((resolve, reject) => {
    settle = (error) => {
      if (isSettled) return;
      isSettled = true;
      req.off('data', onData).off('end', onEnd).off('error', onError).off('close', onClose);
      if (error === undefined) return resolve();
      stopReading(req);
      reject(error);
    };
  });
  const onData = (chunk: Buffer) => {
    receivedBytes += chunk.length;
    if (receivedBytes > limit.maxBytes) return settle(limitExceeded(limit));
    try {
      onChunk(chunk);
    } catch (error) {
      settle(error);
    }
  };
  const onEnd = () => settle();
  const onError = (error: Error) => settle(endedEarly(error));
  const onClose = () => settle(endedEarly());
  if (req.readableEnded) {
    // A body parser mounted before the route has already drained the stream: a wiring mistake.
    settle(new Error('request body was consumed before intake read it'));
  } else {
    req.on('data', onData).on('end', onEnd).on('error', onError).on('close', onClose);
    req.resume();
  }
  return { finished, abort: (error) => settle(error) };
}

/** The client went away mid-body; nobody will read this answer, but the route must stop. */
function endedEarly(cause?: unknown): ClipmodError {
  return new ClipmodError('bad_request', 'Request body ended before it was complete.', { cause });
}
