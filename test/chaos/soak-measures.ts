import type { Redis } from 'ioredis';
import type { ChaosDeployment } from './chaos-deployment.ts';

// The soak's load and arithmetic (test/chaos/soak.test.ts): an open-loop submitter, the queue gauges
// read from /metrics, and the growth of a series fitted by least squares.

export type LoadResults = {
  submitted: number;
  acceptedIds: string[];
  /** Submissions not accepted: an error status, no answer, or skipped because too many were in flight. */
  rejected: number;
  /** HTTP status → count (0: no answer; -1: skipped). */
  statuses: Record<string, number>;
};

export type Sample = {
  /** Since the load started. */
  atMs: number;
  workerRssKiB: number[];
  testProcessRssKiB: number;
  usedMemory: number;
  redisKeys: number;
  deliveryLogEntries: number;
  /** `clipmod_queue_jobs{queue,state}` by state. */
  inference: Record<string, number>;
  webhooks: Record<string, number>;
  submitted: number;
  accepted: number;
  terminal: number;
};

/** Submissions in flight beyond which the submitter skips (and counts) rather than piling up. */
const maxInFlight = 200;

/**
 * Submits `jobsPerSecond` on a timer whether or not earlier submissions have been answered (open
 * loop: a slow API shows as latency and refusals, not as a lower rate), for `durationMs`. The fields
 * update live; `finished` resolves once the last submission is answered.
 */
export function startOpenLoopLoad(
  deployment: ChaosDeployment,
  options: { jobsPerSecond: number; durationMs: number },
): LoadResults & { finished: Promise<LoadResults> } {
  const total = Math.round((options.jobsPerSecond * options.durationMs) / 1000);
  const results: LoadResults = { submitted: 0, acceptedIds: [], rejected: 0, statuses: {} };
  const inFlight = new Set<Promise<void>>();
  const count = (status: number) => {
    results.statuses[status] = (results.statuses[status] ?? 0) + 1;
  };
  const submitOne = () => {
    const submission = deployment.submit().then(({ status, id }) => {
      count(status);
      // 202 normally; 200 when a fast worker finished the job before the API read the record back.
      if ((status === 202 || status === 200) && id) results.acceptedIds.push(id);
      else results.rejected += 1;
    });
    const tracked = submission.finally(() => inFlight.delete(tracked));
    inFlight.add(tracked);
  };
  const startedAt = performance.now();
  const finished = new Promise<LoadResults>((resolve) => {
    const timer = setInterval(() => {
      // Catch up on what is due by now, so a late timer does not lower the rate.
      const due = Math.min(
        total,
        Math.floor(((performance.now() - startedAt) * options.jobsPerSecond) / 1000),
      );
      for (; results.submitted < due; results.submitted += 1) {
        if (inFlight.size < maxInFlight) submitOne();
        else {
          count(-1);
          results.rejected += 1;
        }
      }
      if (results.submitted < total) return;
      clearInterval(timer);
      void Promise.all(inFlight).then(() => resolve(results));
    }, 1000 / options.jobsPerSecond);
  });
  return Object.assign(results, { finished });
}

/** `clipmod_queue_jobs{queue="<queue>",state="…"}` from a Prometheus text exposition, by state. */
export function queueJobCounts(metrics: string, queue: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const line of metrics.split('\n')) {
    if (!line.startsWith('clipmod_queue_jobs{') || !line.includes(`queue="${queue}"`)) continue;
    const state = /state="([^"]+)"/.exec(line)?.[1];
    if (state) counts[state] = Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return counts;
}

export function meanOf(values: readonly number[]): number {
  return values.reduce((sum, value) => sum + value, 0) / values.length;
}

/**
 * Growth of a series over its span, from its least-squares line: (end − start) / start of the fitted
 * line. A fit, not the last sample over the first, so one GC or rehash at either end does not decide.
 */
export function leastSquaresGrowth(points: readonly (readonly [number, number])[]): number {
  const meanX = meanOf(points.map(([x]) => x));
  const meanY = meanOf(points.map(([, y]) => y));
  const covariance = points.reduce((sum, [x, y]) => sum + (x - meanX) * (y - meanY), 0);
  const variance = points.reduce((sum, [x]) => sum + (x - meanX) ** 2, 0);
  const slope = covariance / variance;
  const firstX = points[0]![0];
  const lastX = points.at(-1)![0];
  const start = meanY + slope * (firstX - meanX);
  return (slope * (lastX - firstX)) / start;
}

export type KeyGroup = { keys: number; withoutTtl: number; bytes: number };

/**
 * Every key under `prefix`, grouped by shape (id-like segments replaced by `*`): how many, how many
 * never expire and their MEMORY USAGE. Shows what used_memory is made of, and any key that grows with
 * traffic without a TTL (a leak).
 */
export async function keyCensus(redis: Redis, prefix: string): Promise<Record<string, KeyGroup>> {
  const groups: Record<string, KeyGroup> = {};
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 2_000);
    cursor = next;
    const pipeline = redis.pipeline();
    for (const key of keys) pipeline.pttl(key).memory('USAGE', key, 'SAMPLES', '0');
    const replies = (await pipeline.exec()) ?? [];
    keys.forEach((key, index) => {
      const shape = shapeOf(key.slice(prefix.length));
      const group = groups[shape] ?? { keys: 0, withoutTtl: 0, bytes: 0 };
      groups[shape] = group;
      group.keys += 1;
      if (replies[2 * index]?.[1] === -1) group.withoutTtl += 1;
      group.bytes += Number(replies[2 * index + 1]?.[1] ?? 0);
    });
  } while (cursor !== '0');
  return groups;
}

/** `:moderation:AbC…` → `:moderation:*`: segments after the first that look like generated ids. */
function shapeOf(key: string): string {
  return key
    .split(':')
    .map((part, index) => (index >= 2 && /^[A-Za-z0-9_.-]{16,}$/.test(part) ? '*' : part))
    .join(':');
}

/** All keys matching `pattern`, by SCAN. */
export async function keysMatching(redis: Redis, pattern: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 5_000);
    keys.push(...found);
    cursor = next;
  } while (cursor !== '0');
  return keys;
}

/**
 * Reclaims the keys matching `pattern` that are past their TTL: SCAN deletes an expired key it visits,
 * as any read would. Without this, Redis' active expiry (a sweep of ~20 keys per cycle through all
 * keys with a TTL) leaves a backlog of dead records that grows with the number of TTL keys — here the
 * delivery log's — which would read as growth that no clipmod code holds on to.
 */
export async function reclaimExpired(redis: Redis, pattern: string): Promise<void> {
  await keysMatching(redis, pattern);
}

export async function usedMemory(redis: Redis): Promise<number> {
  return Number(/^used_memory:(\d+)/m.exec(await redis.info('memory'))?.[1]);
}

/** used_memory once two readings 500 ms apart agree within 1 KiB (Redis resizes hash tables in its cron). */
export async function settledUsedMemory(redis: Redis): Promise<number> {
  let previous = await usedMemory(redis);
  for (let attempt = 0; attempt < 20; attempt += 1) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    const current = await usedMemory(redis);
    if (Math.abs(current - previous) < 1_024) return current;
    previous = current;
  }
  return previous;
}

export async function deleteKeys(redis: Redis, keys: readonly string[]): Promise<void> {
  for (let start = 0; start < keys.length; start += 1_000)
    await redis.del(...keys.slice(start, start + 1_000));
}
