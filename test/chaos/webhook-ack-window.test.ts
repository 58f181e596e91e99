import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queueNames } from '../../shared/queue/index.ts';
import { type FaultPoint, faultMetadataKey } from '../../shared/runtime/index.ts';
import {
  type ChaosDeployment,
  type Delivery,
  lockDurationMs,
  sized,
  startChaosDeployment,
} from './chaos-deployment.ts';

// RELIABILITY.md Q2: the webhook worker dies after the receiver answered 2xx and before the job was
// acknowledged. At-least-once means the delivery is sent again — with the original webhook-id and
// byte-identical body, so a receiver deduping on webhook-id processes each event once.
//
// Two windows, each hit by a real SIGKILL of a real `clipmod serve webhooks` process:
// - after the 2xx, before anything is recorded (`webhook-sent-crash`): BullMQ's own window, where
//   exactly one duplicate per kill is the promise;
// - after the delivery log recorded the 2xx, before BullMQ's ack (`webhook-ack-crash`): clipmod's
//   delivery log closes this one — the redelivered job sees the delivery done and sends nothing.
//
// The webhook process runs one attempt at a time, so each kill interrupts exactly one delivery.

let deployment: ChaosDeployment;
let supervisor: NodeJS.Timeout | undefined;
let isRestarting = false;
const kills: number[] = [];

/** Restarts the webhook process whenever it died, like a process manager; counts SIGKILL deaths. */
function supervise(): void {
  supervisor = setInterval(() => {
    const child = deployment.webhookWorker?.child;
    if (isRestarting || !child || (child.exitCode === null && child.signalCode === null)) return;
    if (child.signalCode === 'SIGKILL') kills.push(Date.now());
    isRestarting = true;
    deployment.restartWebhookWorker().finally(() => {
      isRestarting = false;
    });
  }, 100);
}

beforeAll(async () => {
  deployment = await startChaosDeployment({ workers: 1, webhookProcess: { concurrency: 1 } });
  supervise();
}, 180_000);

afterAll(async () => {
  clearInterval(supervisor);
  while (isRestarting) await new Promise((resolve) => setTimeout(resolve, 50));
  await deployment?.stop();
});

/**
 * Submits `repetitions` moderations whose webhook delivery kills the webhook process at `point`, waits
 * until every one has its event and the webhook queue is empty, and returns the deliveries by
 * moderation and the kills seen meanwhile.
 */
async function killAt(point: FaultPoint, repetitions: number, timeoutMs: number) {
  const killsBefore = kills.length;
  const results = await Promise.all(
    Array.from({ length: repetitions }, () => deployment.submit({ [faultMetadataKey]: point })),
  );
  for (const result of results) expect([200, 202]).toContain(result.status);
  const ids = results.map((result) => result.id!);
  await deployment.awaitTerminal(ids, timeoutMs);
  await awaitWebhookQueueDrained(timeoutMs);
  return { groups: deliveriesOf(ids), kills: kills.length - killsBefore };
}

/** Waits until the webhook queue holds nothing waiting, active or delayed, and no restart is pending. */
async function awaitWebhookQueueDrained(timeoutMs: number): Promise<void> {
  const redis = new Redis(deployment.redis.url);
  const key = (state: string) => `${deployment.api.prefix}:${queueNames.webhooks}:${state}`;
  try {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const [wait, active, delayed] = await Promise.all([
        redis.llen(key('wait')),
        redis.llen(key('active')),
        redis.zcard(key('delayed')),
      ]);
      if (wait + active + delayed === 0 && !isRestarting) return;
      if (Date.now() > deadline) throw new Error(`webhook queue not drained: ${wait}/${active}/${delayed}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  } finally {
    redis.disconnect();
  }
}

function deliveriesOf(ids: readonly string[]): Map<string, Delivery[]> {
  const wanted = new Set(ids);
  const groups = new Map<string, Delivery[]>();
  for (const delivery of deployment.deliveries()) {
    if (!wanted.has(delivery.moderationId)) continue;
    groups.set(delivery.moderationId, [...(groups.get(delivery.moderationId) ?? []), delivery]);
  }
  return groups;
}

describe('Q2: webhook worker killed between the receiver’s 2xx and the job’s acknowledgement', () => {
  it('after the 2xx, before it is recorded: exactly one duplicate per kill, same webhook-id and body', async () => {
    const repetitions = sized(3, 50);
    const { groups, kills } = await killAt('webhook-sent-crash', repetitions, sized(120_000, 900_000));

    expect(kills).toBe(repetitions);
    expect(groups.size).toBe(repetitions);
    const redeliverySeconds: number[] = [];
    for (const copies of groups.values()) {
      // The first delivery was answered 2xx, then the worker died: one more, and the same event.
      expect(copies).toHaveLength(2);
      const [first, second] = copies as [Delivery, Delivery];
      expect(second.webhookId).toBe(first.webhookId);
      expect(second.body).toBe(first.body);
      expect(second.at - first.at).toBeLessThanOrEqual(lockDurationMs + lockDurationMs / 2 + 5_000);
      redeliverySeconds.push((second.at - first.at) / 1000);
    }
    // A receiver deduping on webhook-id processes every event once.
    const processed = new Set([...groups.values()].map((copies) => copies[0]!.webhookId));
    expect(processed.size).toBe(repetitions);
    report('Q2 sent-window', {
      repetitions,
      kills,
      duplicates: [...groups.values()].reduce((sum, copies) => sum + copies.length - 1, 0),
      maxRedeliverySeconds: Math.max(...redeliverySeconds),
    });
  }, 1_200_000);

  it('after the delivery log recorded the 2xx, before the ack: no duplicate at all', async () => {
    const repetitions = sized(3, 20);
    const { groups, kills } = await killAt('webhook-ack-crash', repetitions, sized(120_000, 600_000));

    expect(kills).toBe(repetitions);
    expect(groups.size).toBe(repetitions);
    for (const copies of groups.values()) expect(copies).toHaveLength(1);
    report('Q2 ack-window', { repetitions, kills, duplicates: 0 });
  }, 900_000);
});

function report(row: string, figures: Record<string, number>): void {
  process.stderr.write(`[chaos] ${row} ${JSON.stringify(figures)}\n`);
}
