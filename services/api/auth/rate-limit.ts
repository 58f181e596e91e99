import { createHash } from 'node:crypto';
import type { RequestHandler, Response } from 'express';
import type { Cluster, Redis } from 'ioredis';
import { ClipmodError } from '../../../shared/errors/index.ts';
import { principalOf } from './authenticate.ts';
import { redisCall } from './redis-call.ts';

// Per-key token bucket, one Lua script so concurrent API replicas never double-spend a token. The
// bucket is one key under the hash-tagged prefix, so the script runs in Redis Cluster too. The clock
// is an argument: replicas agree closely enough, and tests move time without sleeping.

const tokenBucketScript = `
local capacity = tonumber(ARGV[1])
local refillPerMs = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or capacity
local ts = tonumber(state[2]) or now
-- A clock behind the stored one (another replica) refills nothing rather than going backwards.
if now > ts then
  tokens = math.min(capacity, tokens + (now - ts) * refillPerMs)
  ts = now
end
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
local resetMs = math.ceil((capacity - tokens) / refillPerMs)
local retryAfterMs = 0
if allowed == 0 then retryAfterMs = math.ceil((1 - tokens) / refillPerMs) end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(ts))
redis.call('PEXPIRE', KEYS[1], resetMs + 1000)
return {allowed, math.floor(tokens), retryAfterMs, resetMs}
`;
const tokenBucketSha = createHash('sha1').update(tokenBucketScript).digest('hex');

export type BucketSettings = { limitPerMinute: number; burst: number };

export type BucketDecision = {
  isAllowed: boolean;
  /** Whole tokens left after this request. */
  remaining: number;
  /** Until one token is back; 0 when allowed. */
  retryAfterMs: number;
  /** Until the bucket is full again. */
  resetMs: number;
};

/** Takes one token from the bucket at `key` (a full bucket when new) at time `nowMs`. */
export async function takeToken(
  redis: Redis | Cluster,
  key: string,
  settings: BucketSettings,
  nowMs: number,
): Promise<BucketDecision> {
  const args = [settings.burst, settings.limitPerMinute / 60_000, Math.floor(nowMs)];
  const reply = await redisCall('rate limiting', () =>
    // EVALSHA keeps the script off the wire; NOSCRIPT after a Redis restart or failover loads it once.
    redis.evalsha(tokenBucketSha, 1, key, ...args).catch((error: Error) => {
      if (!error.message.startsWith('NOSCRIPT')) throw error;
      return redis.eval(tokenBucketScript, 1, key, ...args);
    }),
  );
  const [allowed, remaining, retryAfterMs, resetMs] = reply as [number, number, number, number];
  return { isAllowed: allowed === 1, remaining, retryAfterMs, resetMs };
}

export type RateLimitOptions = BucketSettings & {
  redis: Redis | Cluster;
  prefix: string;
  /** Milliseconds since the epoch; tests inject a fake clock. */
  now?: () => number;
};

/**
 * Per-key limit for model routes, mounted after authenticate(). Over the limit: 429 `rate_limited`
 * with Retry-After. A limit of 0 turns limiting off. Redis away: 503, like authentication.
 */
export function rateLimit(options: RateLimitOptions): RequestHandler {
  if (options.limitPerMinute <= 0) return (_req, _res, next) => next();
  const now = options.now ?? Date.now;
  return async (_req, res, next) => {
    const { keyId } = principalOf(res);
    const decision = await takeToken(options.redis, `${options.prefix}:ratelimit:${keyId}`, options, now());
    setRateLimitHeaders(res, options, decision);
    if (!decision.isAllowed) {
      const retryAfterSeconds = Math.max(1, Math.ceil(decision.retryAfterMs / 1000));
      throw new ClipmodError('rate_limited', `rate limit of ${options.limitPerMinute} requests per minute`, {
        retryAfterSeconds,
        details: { limitPerMinute: options.limitPerMinute, burst: options.burst },
      });
    }
    next();
  };
}

/**
 * The IETF draft's RateLimit-* fields in the separate-header style most clients read. For a bucket
 * the limit is the burst (what may be spent now) and the reset is when the bucket is full again.
 */
function setRateLimitHeaders(res: Response, settings: BucketSettings, decision: BucketDecision): void {
  res.setHeader('ratelimit-policy', `${settings.limitPerMinute};w=60;burst=${settings.burst}`);
  res.setHeader('ratelimit-limit', String(settings.burst));
  res.setHeader('ratelimit-remaining', String(decision.remaining));
  res.setHeader('ratelimit-reset', String(Math.ceil(decision.resetMs / 1000)));
}
