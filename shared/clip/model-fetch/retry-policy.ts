import { setTimeout as sleep } from 'node:timers/promises';
import { ClipmodError } from '../../errors/index.ts';

export type RetryPolicy = {
  /** Consecutive failed attempts allowed per request before giving up. */
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** A response body that sends nothing for this long is aborted and resumed. */
  stallTimeoutMs: number;
};

export const defaultRetryPolicy: RetryPolicy = Object.freeze({
  maxAttempts: 5,
  baseDelayMs: 500,
  maxDelayMs: 10_000,
  stallTimeoutMs: 30_000,
});

/**
 * A failure worth retrying: a network error, a stalled body, a 5xx or a 429. Anything else
 * (404, checksum mismatch, disk full) is final and propagates as it is.
 */
export class TransientFetchError extends Error {
  readonly retryAfterMs: number | undefined;
  /** True when the attempt wrote bytes; a resumable download then starts a fresh attempt count. */
  readonly hasMadeProgress: boolean;

  constructor(
    message: string,
    options: { cause?: unknown; retryAfterMs?: number; hasMadeProgress?: boolean },
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TransientFetchError';
    this.retryAfterMs = options.retryAfterMs;
    this.hasMadeProgress = options.hasMadeProgress ?? false;
  }
}

/**
 * Exponential backoff with equal jitter: half the delay is fixed so retries never bunch at zero,
 * half is random so many clients do not retry in lockstep. A server's Retry-After wins when longer.
 */
export function retryDelayMs(
  failedAttempts: number,
  policy: RetryPolicy,
  random: () => number,
  retryAfterMs?: number,
): number {
  const exponential = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (failedAttempts - 1));
  const jittered = exponential / 2 + (random() * exponential) / 2;
  const requested = retryAfterMs === undefined ? 0 : Math.min(retryAfterMs, policy.maxDelayMs);
  return Math.round(Math.max(jittered, requested));
}

/** Retry-After is either delta-seconds or an HTTP date; anything unreadable is ignored. */
export function parseRetryAfterMs(header: string | null, nowMs: number): number | undefined {
  if (header === null || header.trim() === '') return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const dateMs = Date.parse(header);
  return Number.isNaN(dateMs) ? undefined : Math.max(0, dateMs - nowMs);
}

export type RetryNotice = { attempt: number; maxAttempts: number; delayMs: number; reason: string };

/**
 * Runs `operation` until it succeeds, fails with a non-transient error, or fails transiently
 * `maxAttempts` times in a row. An attempt that made progress resets the count, so a long
 * download over a flaky link keeps going as long as each attempt moves it forward.
 */
export async function withRetries<T>(
  what: string,
  operation: () => Promise<T>,
  policy: RetryPolicy,
  onRetry: (notice: RetryNotice) => void,
): Promise<T> {
  let failedAttempts = 0;
  for (;;) {
    try {
      return await operation();
    } catch (error) {
      if (!(error instanceof TransientFetchError)) throw error;
      failedAttempts = error.hasMadeProgress ? 1 : failedAttempts + 1;
      if (failedAttempts >= policy.maxAttempts) {
        throw new ClipmodError(
          'model_fetch_failed',
          `${what}: gave up after ${failedAttempts} attempts: ${error.message}`,
          { details: { attempts: failedAttempts }, cause: error },
        );
      }
      const delayMs = retryDelayMs(failedAttempts, policy, Math.random, error.retryAfterMs);
      onRetry({
        attempt: failedAttempts + 1,
        maxAttempts: policy.maxAttempts,
        delayMs,
        reason: error.message,
      });
      await sleep(delayMs);
    }
  }
}
