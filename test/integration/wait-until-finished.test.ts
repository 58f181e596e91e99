import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue, QueueEvents, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntilFinished } from '../../shared/queue/index.ts';
import { connectRedis, startEmbeddedRedis } from '../../shared/redis/index.ts';

// The API's wait for a job (GET /v1/moderations/:id?wait=, classify, embeddings) against real Redis and
// BullMQ. BullMQ's own Job.waitUntilFinished let a Redis error escape as an unhandled rejection during
// a Sentinel failover (RELIABILITY.md Q6); this one must not.

const prefix = `{wait-test-${randomBytes(4).toString('hex')}}`;
const name = 'jobs';
const connections: Redis[] = [];
let queue: Queue;
let events: QueueEvents;
let worker: Worker;

function openQueue(connection: Redis): Queue {
  const opened = new Queue(name, { connection, prefix });
  opened.on('error', () => {});
  return opened;
}

async function connect(url: string, role: 'request' | 'worker', label: string): Promise<Redis> {
  const connection = await connectRedis(url, role, label);
  connections.push(connection);
  return connection;
}

beforeAll(async () => {
  const url = process.env.REDIS_URL!;
  queue = openQueue(await connect(url, 'request', 'queue'));
  events = new QueueEvents(name, { connection: await connect(url, 'worker', 'events'), prefix });
  worker = new Worker(
    name,
    async (job) => {
      if (job.data.n < 0) throw new Error('negative input');
      return { doubled: job.data.n * 2 };
    },
    { connection: await connect(url, 'worker', 'worker'), prefix },
  );
  await Promise.all([events.waitUntilReady(), worker.waitUntilReady()]);
});

afterAll(async () => {
  await worker?.close();
  await events?.close();
  await queue?.close();
  const keys = await connections[0]!.keys(`${prefix}:*`);
  if (keys.length > 0) await connections[0]!.del(...keys);
  for (const connection of connections) connection.disconnect();
});

describe('waitUntilFinished', () => {
  it('resolves with the return value, also for a job that finished before the wait began', async () => {
    const job = await queue.add('double', { n: 21 });
    expect(await waitUntilFinished(queue, events, job.id!, 10_000)).toEqual({ doubled: 42 });
    expect(await waitUntilFinished(queue, events, job.id!, 10_000)).toEqual({ doubled: 42 });
  });

  it('rejects with the failure reason, or "timed out" when the job does not finish in time', async () => {
    const failing = await queue.add('double', { n: -1 });
    await expect(waitUntilFinished(queue, events, failing.id!, 10_000)).rejects.toThrow('negative input');
    const later = await queue.add('double', { n: 1 }, { delay: 60_000 });
    await expect(waitUntilFinished(queue, events, later.id!, 300)).rejects.toThrow(/timed out/);
    await later.remove();
  });

  it('a Redis error while looking the job up is no unhandled rejection: the finish event settles the wait', async () => {
    // The lookup goes through a queue whose Redis has gone away, as during a failover.
    const dataDir = mkdtempSync(join(tmpdir(), 'clipmod-wait-'));
    const gone = await startEmbeddedRedis({ dataDir });
    const unreachable = openQueue(await connect(gone.url, 'request', 'gone'));
    await unreachable.waitUntilReady();
    await gone.stop();
    rmSync(dataDir, { recursive: true, force: true });
    await expect(unreachable.getJobState('any')).rejects.toThrow();
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const job = await queue.add('double', { n: 5 }, { delay: 500 });
      expect(await waitUntilFinished(unreachable, events, job.id!, 10_000)).toEqual({ doubled: 10 });
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
