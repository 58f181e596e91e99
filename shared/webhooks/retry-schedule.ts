// When to try a failed delivery again, and when to give up on an endpoint. Pure: the clock and the
// random source are parameters, so the whole schedule is tested without waiting.

/** Delays after attempts 1…7 (Svix's schedule): 8 attempts over about 27.6 hours. */
export const defaultRetryScheduleMs: readonly number[] = [
  5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000,
];

/** Each delay is shortened by up to this fraction, so endpoints that failed together retry apart. */
export const defaultJitter = 0.2;

/** A receiver's Retry-After is honoured up to a day; beyond that it could park a delivery forever. */
export const maxRetryAfterMs = 86_400_000;

/** Svix's rule: an endpoint failing without a single success for five days is disabled. */
export const defaultDisableAfterMs = 5 * 86_400_000;

export type RetryScheduleOptions = {
  /** Delay after attempt n is `schedule[n - 1]`; there are `schedule.length + 1` attempts in all. */
  schedule: readonly number[];
  /** Fraction in [0, 1): delays land in [(1 − jitter)·d, d]. */
  jitter: number;
  /** The receiver's Retry-After header (seconds or an HTTP date), when it sent one. */
  retryAfter?: string | undefined;
  /** Epoch ms, for Retry-After dates. */
  now: number;
  /** Uniform in [0, 1). */
  random: () => number;
};

export type NextAttempt =
  | { kind: 'retry'; delayMs: number }
  | { kind: 'give-up'; reason: 'attempts_exhausted' };

/** What follows failed attempt number `attempt` (1 for the first try). */
export function nextAttempt(attempt: number, options: RetryScheduleOptions): NextAttempt {
  const scheduledMs = options.schedule[attempt - 1];
  if (scheduledMs === undefined) return { kind: 'give-up', reason: 'attempts_exhausted' };
  const jitteredMs = Math.round(scheduledMs * (1 - options.jitter * options.random()));
  const retryAfterMs = Math.min(parseRetryAfter(options.retryAfter, options.now) ?? 0, maxRetryAfterMs);
  // Never earlier than the receiver asked: the jitter only ever shortens our own schedule.
  return { kind: 'retry', delayMs: Math.max(jitteredMs, retryAfterMs) };
}

/** RFC 9110 Retry-After: delay-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, nowMs: number): number | undefined {
  const text = value?.trim();
  if (!text) return undefined;
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  // HTTP dates start with the day name; anything else Date.parse would guess at ("-5" is a year).
  if (!/^[A-Za-z]+,? /.test(text)) return undefined;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

export type FailureStreak = {
  /** First failure since the last success (epoch ms). */
  failingSinceMs: number;
  /** The failure just recorded (epoch ms). */
  lastFailureMs: number;
};

/**
 * Disable once first-to-last failure of one unbroken streak spans the window; a short outage (or a
 * burst of failures within minutes) never does, however many deliveries it failed. 0 turns it off.
 */
export function isDisableDue(streak: FailureStreak, disableAfterMs: number): boolean {
  return disableAfterMs > 0 && streak.lastFailureMs - streak.failingSinceMs >= disableAfterMs;
}
