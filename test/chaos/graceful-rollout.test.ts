import type { QueueEvents } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createInferenceQueue, createInferenceQueueEvents } from '../../shared/queue/index.ts';
import { connectRedis } from '../../shared/redis/index.ts';
import { waitUntil } from '../helpers/webhook-receiver.ts';
import { type ChaosDeployment, sized, startChaosDeployment } from './chaos-deployment.ts';

// RELIABILITY.md Q3, a rolling deploy: SIGTERM both `serve inference` workers while jobs are active.
// Each finishes what it holds and exits by itself (no SIGKILL needed), no job stalls or runs twice,
// and the replacements take the remaining jobs within 2 s of being ready.

let deployment: ChaosDeployment;
let events: QueueEvents;
let eventsConnection: Redis;
let client: Redis;
const stalled: string[] = [];

beforeAll(async () => {
  deployment = await startChaosDeployment({ workers: 2 });
  eventsConnection = await connectRedis(deployment.redis.url, 'worker', 'test-rollout-events');
  client = await connectRedis(deployment.redis.url, 'producer', 'test-rollout');
  events = createInferenceQueueEvents(eventsConnection, deployment.api.prefix, (error) =>
    process.stderr.write(`[test] rollout queue events: ${error.message}\n`),
  );
  events.on('stalled', ({ jobId }) => stalled.push(jobId));
  await events.waitUntilReady();
}, 180_000);

afterAll(async () => {
  await events?.close();
  // BullMQ leaves a passed-in connection open.
  eventsConnection?.disconnect();
  client?.disconnect();
  await deployment?.stop();
});

/** Resolves with the ms from now until the child exits (never kills it: that is the point). */
function exitAfter(child: ChaosDeployment['workers'][number]['child']): Promise<number> {
  const startedAt = performance.now();
  return new Promise((resolve) => child.once('exit', () => resolve(performance.now() - startedAt)));
}

describe('Q3: graceful rollout under SIGTERM', () => {
  it('drains both workers with no stall or duplicate, and the new ones resume within 2 s', async () => {
    const jobs = sized(80, 200);
    // Still submitting when the workers get SIGTERM: some jobs are active, others wait for the next workers.
    const submitting = Promise.all(Array.from({ length: jobs }, () => deployment.submit()));
    const queue = createInferenceQueue(client, deployment.api.prefix);
    const activeAtSigterm = await waitUntil(
      'jobs to be active',
      async () => {
        const active = await queue.getActiveCount();
        return active > 0 ? active : undefined;
      },
      30_000,
    );
    const exits = deployment.workers.map((worker) => exitAfter(worker.child));
    for (const worker of deployment.workers) process.kill(worker.child.pid!, 'SIGTERM');
    const exitMs = await Promise.race([
      Promise.all(exits),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('a worker did not exit')), 20_000)),
    ]);
    // Jobs here take well under a second (batch of 4 on the `color` model): max job time + 2 s ≤ 3 s.
    expect(Math.max(...exitMs)).toBeLessThan(3_000);
    expect(deployment.workers.map((worker) => worker.child.exitCode)).toEqual([0, 0]);
    const activeAfterExit = await queue.getActiveCount();
    await queue.close();
    expect(activeAfterExit).toBe(0);

    const submitted = await submitting;
    const ids = submitted.map((result) => result.id!);
    // 202 normally; 200 when a fast worker finished the job before the API read the record back.
    expect(submitted.every((result) => result.status === 202 || result.status === 200)).toBe(true);
    // Submitted while no worker runs: the replacements must pick these up within 2 s of being ready.
    const late = await Promise.all(Array.from({ length: 8 }, () => deployment.submit()));
    const lateIds = late.map((result) => result.id!);
    await Promise.all([deployment.restartWorker(0), deployment.restartWorker(1)]);
    const readyAt = performance.now();
    await waitUntil(
      'a replacement worker to finish a job',
      () => deployment.deliveries().some((delivery) => lateIds.includes(delivery.moderationId)),
      10_000,
    );
    const resumeMs = Math.round(performance.now() - readyAt);
    expect(resumeMs).toBeLessThan(2_000);
    await deployment.awaitTerminal([...ids, ...lateIds], 60_000);

    const wanted = new Set([...ids, ...lateIds]);
    const deliveries = deployment.deliveries().filter((delivery) => wanted.has(delivery.moderationId));
    expect(deliveries.length).toBe(wanted.size);
    expect(stalled).toEqual([]);
    expect(activeAtSigterm).toBeGreaterThan(0);
    const figures = {
      jobs,
      activeAtSigterm,
      exitMs: exitMs.map(Math.round),
      resumeMs,
    };
    process.stderr.write(`[chaos] Q3 ${JSON.stringify(figures)}\n`);
  }, 300_000);
});
