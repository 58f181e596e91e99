import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../shared/config/index.ts';
import {
  classifyAttempt,
  decideAttempt,
  defaultDisableAfterMs,
  defaultJitter,
  defaultRetryScheduleMs,
  isDisableDue,
  maxRetryAfterMs,
  nextAttempt,
  parseRetryAfter,
} from '../../shared/webhooks/index.ts';

// The pure rules behind W3–W5: schedule, jitter, Retry-After, status classes and auto-disable.

const now = Date.parse('2025-01-01T00:00:00Z');
const hour = 3_600_000;
const schedule = { schedule: defaultRetryScheduleMs, jitter: defaultJitter, now };

describe('nextAttempt', () => {
  it('follows 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h without jitter, then gives up after attempt 8', () => {
    const delays = [1, 2, 3, 4, 5, 6, 7].map((attempt) =>
      nextAttempt(attempt, { ...schedule, random: () => 0 }),
    );
    expect(delays).toEqual(
      [5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000].map((delayMs) => ({
        kind: 'retry',
        delayMs,
      })),
    );
    expect(nextAttempt(8, { ...schedule, random: () => 0 })).toEqual({
      kind: 'give-up',
      reason: 'attempts_exhausted',
    });
  });

  it('keeps every jittered delay within −20 % and +0 % of its step', () => {
    for (let attempt = 1; attempt <= 7; attempt++) {
      const base = defaultRetryScheduleMs[attempt - 1]!;
      for (const random of [0, 0.25, 0.5, 0.999_999]) {
        const next = nextAttempt(attempt, { ...schedule, random: () => random });
        expect(next.kind).toBe('retry');
        const { delayMs } = next as { delayMs: number };
        expect(delayMs).toBeGreaterThanOrEqual(Math.floor(base * 0.8));
        expect(delayMs).toBeLessThanOrEqual(base);
      }
    }
  });

  it('waits at least as long as Retry-After asks, in seconds or as an HTTP date, up to a day', () => {
    const retryAfter = (value: string) =>
      nextAttempt(1, { ...schedule, random: () => 0.5, retryAfter: value });
    expect(retryAfter('120')).toEqual({ kind: 'retry', delayMs: 120_000 });
    expect(retryAfter(new Date(now + 600_000).toUTCString())).toEqual({ kind: 'retry', delayMs: 600_000 });
    expect(retryAfter('1')).toEqual({ kind: 'retry', delayMs: 4_500 });
    expect(retryAfter('999999999')).toEqual({ kind: 'retry', delayMs: maxRetryAfterMs });
    expect(retryAfter('soon')).toEqual({ kind: 'retry', delayMs: 4_500 });
  });

  it('reads Retry-After per RFC 9110 and ignores what it cannot read', () => {
    expect(parseRetryAfter(' 30 ', now)).toBe(30_000);
    expect(parseRetryAfter(new Date(now - 5_000).toUTCString(), now)).toBe(0);
    expect(parseRetryAfter('-5', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
    expect(parseRetryAfter('', now)).toBeUndefined();
  });
});

describe('classifyAttempt', () => {
  const response = (status: number, retryAfter?: string) =>
    classifyAttempt({ kind: 'response', status, retryAfter });

  it('counts every 2xx as delivered and 410 as gone', () => {
    expect([200, 201, 204, 299].map((status) => response(status).kind)).toEqual(Array(4).fill('delivered'));
    expect(response(410)).toEqual({ kind: 'gone' });
  });

  it('treats a 3xx as a failure (never followed) and other statuses by class', () => {
    expect([301, 302, 307, 308].map((status) => response(status))).toEqual(
      Array(4).fill({ kind: 'failed', errorClass: 'redirect' }),
    );
    expect(response(404)).toEqual({ kind: 'failed', errorClass: 'client_error' });
    expect(response(429, '120')).toEqual({ kind: 'failed', errorClass: 'rate_limited', retryAfter: '120' });
    expect(response(503, '7')).toEqual({ kind: 'failed', errorClass: 'server_error', retryAfter: '7' });
    expect(response(400, '7')).toEqual({ kind: 'failed', errorClass: 'client_error' });
  });

  it('names the client errors: forbidden address, timeout, DNS, network', () => {
    const error = (code: string, reason?: string) => classifyAttempt({ kind: 'error', code, reason });
    expect(error('url_forbidden', 'forbidden_address')).toMatchObject({ errorClass: 'forbidden_address' });
    expect(error('url_fetch_failed', 'timeout')).toMatchObject({ errorClass: 'timeout' });
    expect(error('url_fetch_failed', 'headers_timeout')).toMatchObject({ errorClass: 'timeout' });
    expect(error('url_fetch_failed', 'dns')).toMatchObject({ errorClass: 'dns' });
    expect(error('url_fetch_failed', 'network')).toMatchObject({ errorClass: 'network' });
  });
});

describe('decideAttempt', () => {
  const options = { ...schedule, random: () => 0 };

  it('retries a 503 on schedule and a 429 no earlier than its Retry-After', () => {
    expect(decideAttempt({ kind: 'response', status: 503 }, 1, options)).toEqual({
      kind: 'retry',
      delayMs: 5_000,
      errorClass: 'server_error',
    });
    expect(decideAttempt({ kind: 'response', status: 429, retryAfter: '120' }, 1, options)).toEqual({
      kind: 'retry',
      delayMs: 120_000,
      errorClass: 'rate_limited',
    });
  });

  it('gives up at once on 410 and after the last scheduled attempt otherwise', () => {
    expect(decideAttempt({ kind: 'response', status: 410 }, 1, options)).toEqual({
      kind: 'give-up',
      reason: 'gone',
      errorClass: 'gone',
    });
    expect(decideAttempt({ kind: 'error', code: 'url_fetch_failed', reason: 'timeout' }, 8, options)).toEqual(
      {
        kind: 'give-up',
        reason: 'attempts_exhausted',
        errorClass: 'timeout',
      },
    );
  });
});

describe('isDisableDue', () => {
  it('disables after five days of unbroken failures and never for a two-hour outage', () => {
    expect(defaultDisableAfterMs).toBe(120 * hour);
    const streak = (spanMs: number) => ({ failingSinceMs: now, lastFailureMs: now + spanMs });
    expect(isDisableDue(streak(2 * hour), defaultDisableAfterMs)).toBe(false);
    expect(isDisableDue(streak(120 * hour - 1), defaultDisableAfterMs)).toBe(false);
    expect(isDisableDue(streak(120 * hour), defaultDisableAfterMs)).toBe(true);
    expect(isDisableDue(streak(12 * hour), 12 * hour)).toBe(true);
  });

  it('never disables when the window is 0', () => {
    expect(isDisableDue({ failingSinceMs: 0, lastFailureMs: now }, 0)).toBe(false);
  });
});

describe('webhook settings', () => {
  it('default to the Svix schedule, a 15 s attempt and a five-day disable window', () => {
    const config = loadConfig({});
    expect(config.CLIPMOD_WEBHOOK_RETRY_SCHEDULE_MS).toEqual(defaultRetryScheduleMs);
    expect(config.CLIPMOD_WEBHOOK_TIMEOUT_MS).toBe(15_000);
    expect(config.CLIPMOD_WEBHOOK_DISABLE_AFTER_MS).toBe(defaultDisableAfterMs);
    expect(config.CLIPMOD_WEBHOOK_SECRET_KEY).toBeUndefined();
  });

  it('parse a schedule as a comma list and name a bad one', () => {
    expect(
      loadConfig({ CLIPMOD_WEBHOOK_RETRY_SCHEDULE_MS: '200, 400,800' }).CLIPMOD_WEBHOOK_RETRY_SCHEDULE_MS,
    ).toEqual([200, 400, 800]);
    expect(() => loadConfig({ CLIPMOD_WEBHOOK_RETRY_SCHEDULE_MS: '5s,5m' })).toThrow(
      /CLIPMOD_WEBHOOK_RETRY_SCHEDULE_MS/,
    );
    expect(() => loadConfig({ CLIPMOD_WEBHOOK_SECRET_KEY: 'short' })).toThrow(/CLIPMOD_WEBHOOK_SECRET_KEY/);
  });
});
