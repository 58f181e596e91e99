import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ServeProcess, startServeProcess } from '../helpers/serve-process.ts';
import { waitUntil } from '../helpers/webhook-receiver.ts';
import {
  type ChaosDeployment,
  type Delivery,
  lockDurationMs,
  sized,
  startChaosDeployment,
} from './chaos-deployment.ts';
import {
  createPartitionedNamespace,
  netnsUnavailableReason,
  networkNamespaceOf,
  type PartitionedNamespace,
} from './network-partition.ts';

// RELIABILITY.md Q5(b): an inference worker cut off from Redis for longer than its lock. It runs in
// a network namespace of this test and reaches Redis over a veth pair; a second worker on loopback
// keeps working. While the veth is down the partitioned worker's locks expire and the healthy
// worker's stalled check redelivers its jobs; after the heal the partitioned worker learns that it
// lost them ("Missing lock"), does not crash, and takes new jobs again within 5 s.

const concurrency = 4;
const maxStalledCount = 2;
// Longer than lockDuration + 2 × stalledInterval (10 s): every job in hand is redelivered meanwhile.
const partitionMs = sized(12_000, 45_000);
const unavailable = netnsUnavailableReason();
if (unavailable) process.stderr.write(`[chaos] Q5b skipped: ${unavailable}\n`);

let namespace: PartitionedNamespace | undefined;
let deployment: ChaosDeployment;
let partitioned: ServeProcess | undefined;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.skipIf(unavailable !== undefined)('Q5(b): an inference worker partitioned from Redis', () => {
  beforeAll(async () => {
    namespace = createPartitionedNamespace();
    deployment = await startChaosDeployment({ workers: 1, redisBind: [namespace.hostAddress] });
    partitioned = startServeProcess(
      'inference',
      { ...deployment.workerEnv, REDIS_URL: `redis://${namespace.hostAddress}:${deployment.redis.port}` },
      { commandPrefix: namespace.commandPrefix },
    );
    await partitioned.ready();
  }, 180_000);

  afterAll(async () => {
    try {
      namespace?.heal();
      await partitioned?.stop(5_000);
      await deployment?.stop();
    } finally {
      namespace?.remove();
    }
  }, 60_000);

  it('loses nothing, repeats only identical events, and the worker resumes after the heal', async () => {
    const worker = partitioned!;
    // `ip netns exec` execs: the pid we signal is node itself, inside the test's namespace.
    expect(networkNamespaceOf(worker.child.pid!)).not.toBe(networkNamespaceOf('self'));

    const before = await submitMany(sized(120, 600));
    await waitUntilWorkerIsBusy(worker, before.length);
    const { cutAt, healedAt } = await partition(namespace!);
    const resumed = await firstJobAfterHeal(worker, healedAt);
    const ids = [...before, ...resumed.submitted];
    await deployment.awaitTerminal(ids, sized(120_000, 600_000));
    await sleep(2 * lockDurationMs);

    expect(worker.child.exitCode).toBeNull();
    expect(worker.child.signalCode).toBeNull();
    const lost = lockLoss(worker);
    expect(lost.messages.some((message) => message.startsWith('Missing lock for job'))).toBe(true);
    // Every job it held was finished by the healthy worker before the heal: redelivered, not waited for.
    const firstTerminal = firstTerminalDelivery();
    const finishedLate = [...lost.jobIds].filter((id) => !((firstTerminal.get(id) ?? Infinity) < healedAt));
    expect(finishedLate).toEqual([]);
    const resumeS = (resumed.at - healedAt) / 1000;
    expect(resumeS).toBeLessThan(5);
    // BullMQ's and ioredis's complaints are log lines too, not raw text between them.
    expect(rawErrorLines(worker)).toEqual([]);

    const extra = assertAtLeastOnce(ids);
    expect(extra).toBeLessThanOrEqual(concurrency);
    // The API agrees with the webhooks: no late write of the partitioned worker undid a result.
    expect(await statusesOtherThanCompleted(ids)).toEqual([]);
    report({
      partitionS: (healedAt - cutAt) / 1000,
      jobs: ids.length,
      lost: 0,
      extraDeliveries: extra,
      jobsInHandAtCut: lost.jobIds.size,
      missingLockLines: lost.messages.filter((message) => message.startsWith('Missing lock')).length,
      resumeS,
      reconnectWarnings: loggedLines(worker, 'inference queue events: Redis connection error'),
      lateResultsKept: loggedLines(worker, 'moderation already finished elsewhere; result kept'),
    });
    process.stderr.write(`[chaos] Q5b lock errors: ${JSON.stringify(lost.messages.slice(0, 4))}\n`);
  }, 900_000);
});

/** Waits until the partitioned worker finished a job while enough remain that it holds more. */
async function waitUntilWorkerIsBusy(worker: ServeProcess, jobs: number): Promise<void> {
  await waitUntil(
    'the partitioned worker to finish a job while a backlog remains',
    () => {
      if (jobs - terminalIds().size < 4 * concurrency)
        throw new Error('the backlog drained before the partition; submit more jobs');
      return finishedBy(worker).length > 0;
    },
    30_000,
  );
}

async function partition(ns: PartitionedNamespace): Promise<{ cutAt: number; healedAt: number }> {
  ns.cut();
  const cutAt = Date.now();
  try {
    await sleep(partitionMs);
  } finally {
    ns.heal();
  }
  return { cutAt, healedAt: Date.now() };
}

/**
 * When the partitioned worker first finished a job it took after the heal (any job but those it held
 * at the cut), with a bounded trickle of submissions so that there is one to take.
 */
async function firstJobAfterHeal(
  worker: ServeProcess,
  healedAt: number,
): Promise<{ at: number; submitted: string[] }> {
  const submitted: string[] = [];
  const at = await waitUntil(
    'the partitioned worker to finish a job taken after the heal',
    async () => {
      if (submitted.length < sized(80, 200)) submitted.push(...(await submitMany(4)));
      const held = lockLoss(worker).jobIds;
      const times = finishedBy(worker)
        .filter((line) => !held.has(String(line.moderationId)))
        .map((line) => Date.parse(String(line.time)));
      return times.find((time) => time >= healedAt);
    },
    30_000,
  );
  return { at, submitted };
}

/** Every id has one event (one webhook-id), each delivered ≤ maxStalledCount+1 times, byte-identical. */
function assertAtLeastOnce(ids: readonly string[]): number {
  const wanted = new Set(ids);
  const deliveries = deployment.deliveries().filter((delivery) => wanted.has(delivery.moderationId));
  const groups = new Map<string, Delivery[]>();
  for (const delivery of deliveries)
    groups.set(delivery.webhookId, [...(groups.get(delivery.webhookId) ?? []), delivery]);
  expect(deliveries.filter((delivery) => delivery.type !== 'moderation.completed')).toEqual([]);
  expect(groups.size).toBe(ids.length);
  for (const copies of groups.values()) {
    expect(new Set(copies.map((copy) => copy.body)).size).toBe(1);
    expect(copies.length).toBeLessThanOrEqual(maxStalledCount + 1);
  }
  return deliveries.length - groups.size;
}

async function statusesOtherThanCompleted(ids: readonly string[]): Promise<string[]> {
  const others: string[] = [];
  for (const id of ids) {
    const record = (await (await deployment.api.request(`/v1/moderations/${id}`)).json()) as {
      status: string;
    };
    if (record.status !== 'completed') others.push(`${id} ${record.status}`);
  }
  return others;
}

function terminalIds(): Set<string> {
  return new Set(deployment.deliveries().map((delivery) => delivery.moderationId));
}

function firstTerminalDelivery(): Map<string, number> {
  const first = new Map<string, number>();
  for (const delivery of deployment.deliveries())
    first.set(delivery.moderationId, Math.min(first.get(delivery.moderationId) ?? Infinity, delivery.at));
  return first;
}

function finishedBy(worker: ServeProcess): Record<string, unknown>[] {
  return worker.logs().filter((line) => line.msg === 'moderation finished');
}

/** What the worker logged about losing its locks, as BullMQ words it, and the jobs it names. */
function lockLoss(worker: ServeProcess): { messages: string[]; jobIds: Set<string> } {
  const messages = worker
    .logs()
    .filter((line) => line.msg === 'inference worker error')
    .map((line) => String((line.err as { message?: string } | undefined)?.message))
    .filter((message) => /^(Missing lock|could not renew lock) for job /.test(message));
  const jobIds = new Set(messages.map((message) => message.match(/for job ([^ .]+)/)![1]!));
  return { messages, jobIds };
}

function loggedLines(worker: ServeProcess, msg: string): number {
  return worker.logs().filter((line) => line.msg === msg).length;
}

function rawErrorLines(worker: ServeProcess): string[] {
  return worker
    .output()
    .split('\n')
    .filter((line) => !line.startsWith('{') && /error/i.test(line));
}

async function submitMany(count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let start = 0; start < count; start += 50) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(50, count - start) }, () => deployment.submit()),
    );
    for (const result of batch) {
      // 202 normally; 200 when a fast worker finished the job before the API read the record back.
      expect([200, 202]).toContain(result.status);
      ids.push(result.id!);
    }
  }
  return ids;
}

function report(figures: Record<string, number>): void {
  process.stderr.write(`[chaos] Q5b ${JSON.stringify(figures)}\n`);
}
