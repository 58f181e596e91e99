import { ReplyError } from 'ioredis';
import { ClipmodError, isClipmodError } from '../../../shared/errors/index.ts';

// Request paths use the producer connection (no offline queue), so a Redis that is away fails a
// command at once; here that failure becomes a 503 instead of an anonymous 500.

/** Replies that mean "Redis cannot serve right now", as opposed to a bug in the command sent. */
const transientReply = /^(LOADING|READONLY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|BUSY)\b/;

/** Runs one Redis step of a request; connection trouble becomes `unavailable` with Retry-After 1. */
export async function redisCall<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (isClipmodError(error)) throw error;
    const isServerRefusal = error instanceof ReplyError && !transientReply.test((error as Error).message);
    if (isServerRefusal) throw error;
    throw new ClipmodError('unavailable', `Redis is unavailable (${what})`, {
      retryAfterSeconds: 1,
      cause: error,
    });
  }
}
