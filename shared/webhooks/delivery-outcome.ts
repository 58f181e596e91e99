import { nextAttempt, type RetryScheduleOptions } from './retry-schedule.ts';

// What one delivery attempt's result means. A value, never an exception: every answer a receiver can
// give (or not give) is an expected outcome of sending a webhook.

export const errorClasses = [
  'redirect',
  'client_error',
  'rate_limited',
  'server_error',
  'gone',
  'timeout',
  'network',
  'dns',
  'forbidden_address',
] as const;
export type ErrorClass = (typeof errorClasses)[number];

/** An HTTP answer, or the typed error of the SSRF-safe client (its ClipmodError code and reason). */
export type AttemptResult =
  | { kind: 'response'; status: number; retryAfter?: string | undefined }
  | { kind: 'error'; code: string; reason?: string | undefined };

export type AttemptOutcome =
  | { kind: 'delivered' }
  | { kind: 'gone' }
  | { kind: 'failed'; errorClass: ErrorClass; retryAfter?: string | undefined };

/**
 * 2xx delivered; 410 Gone disables the endpoint; 3xx is a failure (never followed: the Location could
 * point anywhere); 429 and 5xx retry with their Retry-After honoured; anything else retries on schedule.
 */
export function classifyAttempt(result: AttemptResult): AttemptOutcome {
  if (result.kind === 'error') return { kind: 'failed', errorClass: errorClassOf(result) };
  const { status } = result;
  if (status >= 200 && status <= 299) return { kind: 'delivered' };
  if (status === 410) return { kind: 'gone' };
  if (status >= 300 && status <= 399) return { kind: 'failed', errorClass: 'redirect' };
  if (status === 429) return { kind: 'failed', errorClass: 'rate_limited', retryAfter: result.retryAfter };
  if (status >= 500) return { kind: 'failed', errorClass: 'server_error', retryAfter: result.retryAfter };
  return { kind: 'failed', errorClass: 'client_error' };
}

function errorClassOf(result: { code: string; reason?: string | undefined }): ErrorClass {
  if (result.code === 'url_forbidden') return 'forbidden_address';
  if (result.reason === 'timeout' || result.reason === 'headers_timeout') return 'timeout';
  if (result.reason === 'dns') return 'dns';
  return 'network';
}

export type AttemptDecision =
  | { kind: 'delivered' }
  | { kind: 'retry'; delayMs: number; errorClass: ErrorClass }
  | { kind: 'give-up'; reason: 'gone' | 'attempts_exhausted'; errorClass: ErrorClass };

/** The whole decision after attempt number `attempt`: classification, then the retry schedule. */
export function decideAttempt(
  result: AttemptResult,
  attempt: number,
  schedule: Omit<RetryScheduleOptions, 'retryAfter'>,
): AttemptDecision {
  const outcome = classifyAttempt(result);
  if (outcome.kind === 'delivered') return outcome;
  if (outcome.kind === 'gone') return { kind: 'give-up', reason: 'gone', errorClass: 'gone' };
  const next = nextAttempt(attempt, { ...schedule, retryAfter: outcome.retryAfter });
  return next.kind === 'retry'
    ? { kind: 'retry', delayMs: next.delayMs, errorClass: outcome.errorClass }
    : { kind: 'give-up', reason: next.reason, errorClass: outcome.errorClass };
}
