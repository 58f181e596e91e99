import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, openRedis } from '../../shared/redis/index.ts';
import { solidImage } from '../helpers/images.ts';
import { builtModel } from '../helpers/models.ts';
import {
  hasBinary,
  nodeCommand,
  type SentinelTopology,
  startRedisSentinel,
} from '../helpers/redis-topology.ts';
import { type ServeProcess, startServeProcess } from '../helpers/serve-process.ts';
import { type ServiceHarness, startService } from '../helpers/service-harness.ts';

// ../shared/RELIABILITY.md Q6, CI size: a primary, a replica and three Sentinels on loopback; a
// SENTINEL FAILOVER while clients submit. Clients behave as the README tells them to: a 503 is
// retried with the same Idempotency-Key. Every submission answered 202 must end with a verdict.

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
  const env = {
    REDIS_URL: topology.url,
    MODEL_DIR: await builtModel('color'),
    CLIPMOD_MAX_BATCH_SIZE: '4',
    CLIPMOD_MAX_BATCH_WAIT_MS: '50',
    CLIPMOD_REDIS_WAIT_REPLICAS: '1',
  };
  service = await startService({ env, roles: ['api'] });
  workers = [1, 2].map(() =>
    startServeProcess('inference', { ...env, CLIPMOD_REDIS_PREFIX: service.prefix }),
  );
  await Promise.all(workers.map((worker) => worker.ready()));
}, 120_000);

afterAll(async () => {
  await Promise.all(workers.map((worker) => worker.stop()));
  await service?.stop();
  await topology?.stop();
});

type Accepted = { id: string; isRed: boolean; acceptedAt: number };

/** Submits until accepted (202, or 200 for a retry that finds the work done), retrying refusals and
 * connection errors with one Idempotency-Key, as README tells clients to. */
async function submitUntilAccepted(image: Uint8Array, isRed: boolean, refusals: string[]): Promise<Accepted> {
  const key = randomUUID();
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const response = await service
      .request('/v1/moderations', {
        method: 'POST',
        headers: { 'content-type': 'image/png', 'idempotency-key': key },
        body: image,
      })
      .catch((error: Error) => error);
    if (!(response instanceof Error) && (response.status === 202 || response.status === 200)) {
      return { id: ((await response.json()) as { id: string }).id, isRed, acceptedAt: Date.now() };
    }
    refusals.push(response instanceof Error ? response.message : String(response.status));
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`submission ${key} was refused for 60 s: ${refusals.slice(-3).join(', ')}`);
}

async function finalState(id: string, deadline: number): Promise<Record<string, any>> {
  for (;;) {
    const response = await service.request(`/v1/moderations/${id}?wait=2000`).catch(() => undefined);
    const body = response?.ok
      ? ((await response.json()) as Record<string, any>)
      : { status: response?.status };
    if (body.status === 'completed' || body.status === 'failed' || Date.now() > deadline) return body;
    if (!response?.ok) await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

type Load = { accepted: Accepted[]; refusals: string[]; stop(): Promise<void> };

/** Four clients submitting red and green images back to back until stopped. */
function startLoad(red: Uint8Array, green: Uint8Array): Load {
  const accepted: Accepted[] = [];
  const refusals: string[] = [];
  let isLoading = true;
  const clients = Array.from({ length: 4 }, async (_, client) => {
    for (let n = 0; isLoading; n++) {
      const isRed = (n + client) % 2 === 0;
      accepted.push(await submitUntilAccepted(isRed ? red : green, isRed, refusals));
    }
  });
  return {
    accepted,
    refusals,
    stop: async () => {
      isLoading = false;
      await Promise.all(clients);
    },
  };
}

async function until(what: string, condition: () => boolean | Promise<boolean>, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('Redis Sentinel failover under load', () => {
  it('refuses to start within seconds when no Sentinel answers, instead of retrying forever', async () => {
    const startedAt = Date.now();
    const error = await openRedis(
      `redis+sentinel://127.0.0.1:${await freePort()}/nobody`,
      'worker',
      'probe',
    ).catch((caught: unknown) => caught);
    expect(String(error)).toMatch(/cannot connect to Redis for probe: All sentinels are unreachable/);
    expect(Date.now() - startedAt).toBeLessThan(10_000);
  });

  it('keeps processing after SENTINEL FAILOVER and loses no accepted submission', async () => {
    const put = await service.request('/v1/policies/default', {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(colorPolicy),
    });
    expect(put.status).toBe(201);
    const load = startLoad(
      await solidImage('png', 32, 32, [230, 20, 20]),
      await solidImage('png', 32, 32, [20, 200, 30]),
    );
    await until('submissions before the failover', () => load.accepted.length >= 20, 30_000);
    const oldPrimary = await topology.primaryPort();
    await nodeCommand(topology.sentinelPorts[0]!, 'SENTINEL', 'FAILOVER', topology.masterName);
    const failoverAt = Date.now();
    await until(
      'the Sentinels to name a new primary',
      async () => (await topology.primaryPort()) !== oldPrimary,
      10_000,
    );
    const acceptedAfter = () => load.accepted.filter((submission) => submission.acceptedAt > failoverAt);
    // With one replica, WAIT refuses submissions (503) until the old primary rejoins as a replica.
    await until('submissions accepted after the failover', () => acceptedAfter().length >= 12, 40_000);
    await load.stop();

    const deadline = Date.now() + 45_000;
    const results = await Promise.all(load.accepted.map((submission) => finalState(submission.id, deadline)));
    const lost = load.accepted
      .filter((_, n) => results[n]?.status !== 'completed')
      .map((submission) => submission.id);
    expect(lost).toEqual([]);
    expect(results.map((result) => result.verdict?.action)).toEqual(
      load.accepted.map((submission) => (submission.isRed ? 'block' : 'allow')),
    );
    const times = load.accepted.map((submission) => submission.acceptedAt).sort((a, b) => a - b);
    const longestPauseMs = Math.max(...times.slice(1).map((time, n) => time - times[n]!));
    console.log(
      `[sentinel] ${load.accepted.length} accepted, 0 lost; ${load.refusals.length} refusals retried; ` +
        `longest pause between acceptances ${longestPauseMs} ms`,
    );
  }, 150_000);
});
