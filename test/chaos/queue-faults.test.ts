import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { faultMetadataKey } from '../../shared/runtime/index.ts';
import {
  type ChaosDeployment,
  type Delivery,
  lockDurationMs,
  sized,
  startChaosDeployment,
} from './chaos-deployment.ts';

// RELIABILITY.md Q1 (kill -9 of inference workers mid-batch) and Q10 (poison pill), against real
// worker processes and a private Redis. At-least-once: nothing accepted is lost, and a duplicate is
// the same event (same webhook-id, byte-identical body), so receivers can dedupe on webhook-id.

const concurrency = 4;
const maxStalledCount = 2;
let deployment: ChaosDeployment;
const restarts: number[] = [];
let supervisor: NodeJS.Timeout | undefined;
let isRestarting = false;

/** Restarts any worker that died, like a process manager would; counts the restarts. */
function supervise(): void {
  supervisor = setInterval(() => {
    if (isRestarting) return;
    const dead = deployment.workers.findIndex(
      (worker) => worker.child.exitCode !== null || worker.child.signalCode !== null,
    );
    if (dead < 0) return;
    isRestarting = true;
    restarts.push(Date.now());
    deployment.restartWorker(dead).finally(() => {
      isRestarting = false;
    });
  }, 100);
}

beforeAll(async () => {
  deployment = await startChaosDeployment({ workers: 2 });
  supervise();
}, 180_000);

afterAll(async () => {
  clearInterval(supervisor);
  await deployment?.stop();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function submitMany(count: number, metadata: Record<string, unknown> = {}): Promise<string[]> {
  const ids: string[] = [];
  for (let start = 0; start < count; start += 50) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(50, count - start) }, () => deployment.submit(metadata)),
    );
    for (const result of batch) {
      // 202 normally; 200 when a fast worker finished the job before the API read the record back.
      expect([200, 202]).toContain(result.status);
      ids.push(result.id!);
    }
  }
  return ids;
}

function byWebhookId(deliveries: readonly Delivery[]): Map<string, Delivery[]> {
  const groups = new Map<string, Delivery[]>();
  for (const delivery of deliveries)
    groups.set(delivery.webhookId, [...(groups.get(delivery.webhookId) ?? []), delivery]);
  return groups;
}

describe('Q1: kill -9 of inference workers mid-batch', () => {
  it('loses no accepted moderation and repeats only identical events', async () => {
    const jobs = sized(120, 2_000);
    const kills = sized(2, 20);
    // Kills start while submissions still arrive, so they land mid-batch.
    const submitted = submitMany(jobs);
    for (let kill = 0; kill < kills; kill += 1) {
      await sleep(800 + Math.random() * 800);
      while (isRestarting) await sleep(50);
      const worker = deployment.workers[Math.floor(Math.random() * deployment.workers.length)]!;
      if (worker.child.pid !== undefined && worker.child.exitCode === null)
        process.kill(worker.child.pid, 'SIGKILL');
    }
    const ids = await submitted;
    await deployment.awaitTerminal(ids, sized(120_000, 900_000));
    await sleep(2 * lockDurationMs);

    const wanted = new Set(ids);
    const deliveries = deployment.deliveries().filter((delivery) => wanted.has(delivery.moderationId));
    const groups = byWebhookId(deliveries);
    // One event per moderation: a redelivered job republishes the same event, never a second one.
    expect(groups.size).toBe(ids.length);
    for (const copies of groups.values()) {
      expect(new Set(copies.map((copy) => copy.body)).size).toBe(1);
      expect(copies.length).toBeLessThanOrEqual(maxStalledCount + 1);
    }
    const extra = deliveries.length - groups.size;
    expect(extra).toBeLessThanOrEqual(kills * concurrency);
    // Receiver-side dedupe on webhook-id: each moderation processed exactly once.
    expect(new Set(deliveries.map((delivery) => delivery.moderationId)).size).toBe(ids.length);
    report('Q1', { jobs, kills, extraDeliveries: extra, restarts: restarts.length });
  }, 1_200_000);
});

describe('Q10: a job that crashes every worker that takes it', () => {
  it('fails after bounded starts, sends moderation.failed and lets other jobs through', async () => {
    const restartsBefore = restarts.length;
    const startedAt = Date.now();
    const [poison] = await submitMany(1, { [faultMetadataKey]: 'inference-crash' });
    const others = await submitMany(sized(20, 200));
    await deployment.awaitTerminal([poison!, ...others], sized(120_000, 600_000));

    const deliveries = deployment.deliveries();
    const poisonEvents = deliveries.filter((delivery) => delivery.moderationId === poison);
    expect(new Set(poisonEvents.map((event) => event.type))).toEqual(new Set(['moderation.failed']));
    const completed = new Set(
      deliveries.filter((delivery) => delivery.type === 'moderation.completed').map((d) => d.moderationId),
    );
    expect(others.every((id) => completed.has(id))).toBe(true);
    const record = (await (await deployment.api.request(`/v1/moderations/${poison}`)).json()) as {
      status: string;
      error?: { code: string };
    };
    expect(record.status).toBe('failed');
    // Starts ≤ maxStalledCount + 1: each start crashed one worker, so at most that many restarts.
    const crashRestarts = restarts.length - restartsBefore;
    expect(crashRestarts).toBeGreaterThanOrEqual(1);
    expect(crashRestarts).toBeLessThanOrEqual(maxStalledCount + 1);
    report('Q10', { crashRestarts, seconds: Math.round((Date.now() - startedAt) / 1000) });
  }, 900_000);
});

function report(row: string, figures: Record<string, number>): void {
  process.stderr.write(`[chaos] ${row} ${JSON.stringify(figures)}\n`);
}
