import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { builtModel } from '../helpers/models.ts';
import {
  hasBinary,
  nodeCommand,
  type SentinelTopology,
  startRedisSentinel,
} from '../helpers/redis-topology.ts';
import { type ServeProcess, startServeProcess } from '../helpers/serve-process.ts';
import { type ServiceHarness, startService } from '../helpers/service-harness.ts';
import { isFullSize, lockDurationMs, sized } from './chaos-deployment.ts';
import {
  completionRate,
  type FailoverLoad,
  recoveredAfterMs,
  recoveryWindowMs,
  refusalReasons,
  refusalWindow,
  startFailoverLoad,
} from './failover-load.ts';

// RELIABILITY.md Q6: a primary, a replica and three Sentinels on loopback; the API in this process,
// two `serve inference` processes, closed-loop clients (see failover-load.ts). Rounds alternate
// SENTINEL FAILOVER and kill -9 of the current primary (restarted on its port as the new primary's
// replica, as a supervisor would). CLIPMOD_REDIS_WAIT_REPLICAS=1: a 202 means the replica holds the
// submission, so no failover can lose one (README "Accepted (202) means stored"); with one replica
// the API refuses (503) until the old primary serves as a replica again. Per round: how long until
// the Sentinels name a new primary, the refusal window, completions per second in the 20 s before
// and the 30 s after, and when throughput is back to ≥ 90 % of before. An unhandled rejection in this
// process (the API's) fails the run: Vitest reports it as an error.

type FailoverKind = 'sentinel-failover' | 'kill-9';

const kinds: FailoverKind[] = Array.from({ length: 2 * sized(1, 5) }, (_, n) =>
  n % 2 === 0 ? 'sentinel-failover' : 'kill-9',
);
const clients = 12;
const baselineMs = 20_000;
const observeMs = 30_000;
/**
 * The throughput bound holds at full size, which runs alone. The CI form shares the 2 cores with the
 * rest of `npm test`, whose other files take a changing share of them: there the ratio to the 20 s
 * before measures the neighbours as much as the failover (seen: 118/s after vs 244/s before while both
 * workers finished 3,800 jobs each), so CI asserts that both workers keep finishing jobs and reports
 * the recovery time without judging it.
 */
const isThroughputJudged = isFullSize;
/** Throughput must be back to this fraction of the 20 s before, within observeMs. */
const recoveryFraction = 0.9;
/** Clients record a completion when they read its verdict, a little after the worker wrote it. */
const readBackMarginMs = 2_000;

const colorPolicy = {
  labels: [{ id: 'red', prompts: ['a red image'], threshold: 0.5, action: 'block' }],
  baseline: ['a green image', 'a blue image', 'a yellow image', 'a black image', 'a white image'],
};

let topology: SentinelTopology;
let service: ServiceHarness;
let workers: ServeProcess[] = [];

beforeAll(async () => {
  if (!hasBinary('redis-sentinel'))
    throw new Error('redis-sentinel is needed (Debian: apt-get install redis-sentinel)');
  topology = await startRedisSentinel();
  const env = { REDIS_URL: topology.url, CLIPMOD_REDIS_WAIT_REPLICAS: '1' };
  service = await startService({ env, roles: ['api'] });
  const modelDir = await builtModel('color');
  workers = [1, 2].map(() =>
    startServeProcess('inference', {
      ...env,
      MODEL_DIR: modelDir,
      CLIPMOD_REDIS_PREFIX: service.prefix,
      CLIPMOD_LOCK_DURATION_MS: String(lockDurationMs),
      CLIPMOD_MAX_BATCH_SIZE: '4',
      CLIPMOD_WORKER_CONCURRENCY: '4',
      CLIPMOD_INTRA_OP_THREADS: '1',
    }),
  );
  await Promise.all(workers.map((worker) => worker.ready()));
}, 180_000);

afterAll(async () => {
  await Promise.all(workers.map((worker) => worker.stop()));
  await service?.stop();
  await topology?.stop();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const sleepUntil = (time: number) => sleep(Math.max(0, time - Date.now()));

async function until<T>(what: string, value: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = await value().catch(() => undefined);
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

type Failover = { kind: FailoverKind; at: number; promotedAfterMs: number; restartedAfterMs?: number };

/** Fails the primary over; resolves once the Sentinels name another (and a killed one is back). */
async function failOver(kind: FailoverKind): Promise<Failover> {
  const oldPrimary = await topology.primaryPort();
  const at = Date.now();
  if (kind === 'sentinel-failover') {
    await nodeCommand(topology.sentinelPorts[0]!, 'SENTINEL', 'FAILOVER', topology.masterName);
  } else {
    await topology.killNode(oldPrimary);
  }
  await until(
    'the Sentinels to name a new primary',
    async () => ((await topology.primaryPort()) !== oldPrimary ? true : undefined),
    30_000,
  );
  const promotedAfterMs = Date.now() - at;
  if (kind === 'sentinel-failover') return { kind, at, promotedAfterMs };
  // Without a replica, WAIT 1 refuses every submission: the killed node must come back as one.
  await topology.restartNode(oldPrimary);
  return { kind, at, promotedAfterMs, restartedAfterMs: Date.now() - at };
}

function logsBetween(worker: ServeProcess, from: number, to: number): Record<string, unknown>[] {
  return worker.logs().filter((line) => {
    const time = Date.parse(String(line.time));
    return time >= from && time < to;
  });
}

function finishedBetween(worker: ServeProcess, from: number, to: number): number {
  return logsBetween(worker, from, to).filter((line) => line.msg === 'moderation finished').length;
}

function problemsBetween(worker: ServeProcess, from: number, to: number): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const line of logsBetween(worker, from, to)) {
    if (line.level !== 'warn' && line.level !== 'error') continue;
    const error = (line.err as { message?: string } | undefined)?.message ?? '';
    const what = `${line.msg}: ${error.replace(/\d+/g, 'N')}`.slice(0, 120);
    counts[what] = (counts[what] ?? 0) + 1;
  }
  return counts;
}

type Round = Failover & {
  refusalMs: number;
  refusals: number;
  beforePerS: number;
  after30PerS: number;
  recoveredAfterMs: number | undefined;
  /** Moderations each worker finished from the recovery to the end of the observation. */
  finishedByWorker: number[];
  /** What the refusals said, and what each worker logged as warnings or errors, while observed. */
  refusedWith: Record<string, number>;
  workerProblems: Record<string, number>[];
};

async function runRound(kind: FailoverKind, load: FailoverLoad): Promise<Round> {
  await topology.settled(60_000);
  await sleep(baselineMs);
  const failover = await failOver(kind);
  const { at } = failover;
  // The last 5-s window that may start within observeMs ends recoveryWindowMs later.
  const observedUntil = at + observeMs + recoveryWindowMs;
  await sleepUntil(observedUntil + readBackMarginMs);
  const beforePerS = completionRate(load.outcomes, at - baselineMs, at);
  let recovered = recoveredAfterMs(load.outcomes, at, observedUntil, beforePerS, recoveryFraction);
  if (recovered === undefined) {
    // Not back within 30 s: watch 30 s more, to say how late it is rather than only that it is.
    await sleepUntil(observedUntil + observeMs + readBackMarginMs);
    recovered = recoveredAfterMs(load.outcomes, at, observedUntil + observeMs, beforePerS, recoveryFraction);
  }
  const refused = refusalWindow(load.answers, at);
  return {
    ...failover,
    refusalMs: refused.ms,
    refusals: refused.refusals,
    beforePerS: round1(beforePerS),
    after30PerS: round1(completionRate(load.outcomes, at, at + observeMs)),
    recoveredAfterMs: recovered,
    finishedByWorker: workers.map((worker) => finishedBetween(worker, at + (recovered ?? 0), observedUntil)),
    refusedWith: refusalReasons(load.answers, at, observedUntil),
    workerProblems: workers.map((worker) => problemsBetween(worker, at, observedUntil)),
  };
}

const round1 = (value: number) => Math.round(value * 10) / 10;

function report(rounds: readonly Round[], load: FailoverLoad): void {
  for (const [n, { at: _at, ...figures }] of rounds.entries()) {
    process.stderr.write(`[chaos] Q6 round ${n + 1} ${JSON.stringify(figures)}\n`);
  }
  const of = (kind: FailoverKind, pick: (round: Round) => number | undefined) =>
    rounds.filter((round) => round.kind === kind).map(pick);
  const byKind = (kind: FailoverKind) => ({
    promotedMs: of(kind, (round) => round.promotedAfterMs),
    refusalMs: of(kind, (round) => round.refusalMs),
    recoveredMs: of(kind, (round) => round.recoveredAfterMs),
    beforePerS: of(kind, (round) => round.beforePerS),
    after30PerS: of(kind, (round) => round.after30PerS),
  });
  const summary = {
    rounds: rounds.length,
    accepted: load.outcomes.length,
    lost: load.outcomes.filter((outcome) => outcome.status !== 'completed').length,
    refused: load.answers.filter((answer) => answer.kind === 'refused').length,
    sentinelFailover: byKind('sentinel-failover'),
    kill9: byKind('kill-9'),
  };
  process.stderr.write(`[chaos] Q6 ${JSON.stringify(summary)}\n`);
}

describe('Q6: Redis Sentinel failover under load', () => {
  it(
    `keeps processing through ${kinds.length} failovers (SENTINEL FAILOVER and kill -9, alternating) and loses nothing accepted`,
    async () => {
      const put = await service.request('/v1/policies/default', {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(colorPolicy),
      });
      expect(put.status).toBe(201);
      const load = await startFailoverLoad(service, clients);
      const rounds: Round[] = [];
      try {
        await until(
          '20 verdicts before the first failover',
          async () => load.outcomes.length >= 20 || undefined,
          60_000,
        );
        for (const kind of kinds) rounds.push(await runRound(kind, load));
      } finally {
        await load.stop();
      }
      report(rounds, load);

      // 0 lost: every accepted submission completed, with the verdict its colour calls for.
      expect(load.abandoned).toEqual([]);
      expect(load.answers.filter((answer) => answer.kind === 'unexpected')).toEqual([]);
      const wrong = load.outcomes.filter(
        (outcome) => outcome.status !== 'completed' || outcome.action !== outcome.expected,
      );
      expect(wrong).toEqual([]);
      for (const round of rounds) {
        // Throughput back to ≥ 90 % of before within 30 s (full size), and both workers taking jobs again.
        if (isThroughputJudged)
          expect(
            round.recoveredAfterMs ?? Number.POSITIVE_INFINITY,
            `${round.kind}: throughput not back within 30 s`,
          ).toBeLessThanOrEqual(observeMs);
        expect(
          round.finishedByWorker.every((count) => count > 0),
          `${round.kind}: a worker stopped`,
        ).toBe(true);
      }
      expect(workers.every((worker) => worker.child.exitCode === null)).toBe(true);
    },
    sized(420_000, 1_800_000),
  );
});
