import type { EventEmitter } from 'node:events';
import { Job, type Queue, type QueueEvents } from 'bullmq';

type Outcome = { isCompleted: true; returnValue: unknown } | { isCompleted: false; reason: string };

/**
 * Job.waitUntilFinished without its flaw (bullmq 6.7.0): BullMQ looks up whether the job already
 * finished inside an async Promise executor, so a Redis error there ("Command timed out",
 * MaxRetriesPerRequestError while the primary fails over) escapes as an unhandled rejection, which
 * ends a Node process (RELIABILITY.md Q6: 7 of them in one run of 10 failovers, from `?wait` requests).
 * Here that error only skips the lookup: the finish event (QueueEvents resumes its stream where it
 * left off) or the ttl settles the wait. Resolves with the return value; rejects with the failure
 * reason, or with "… timed out …" after ttlMs (never when 0), or when the queue closes.
 */
export function waitUntilFinished(
  queue: Queue,
  queueEvents: QueueEvents,
  jobId: string,
  ttlMs: number,
): Promise<unknown> {
  // Per-job events (`completed:<id>`) and the queue's 'closing' are outside BullMQ's typed listener maps.
  const events = queueEvents as unknown as EventEmitter;
  const closing = queue as unknown as EventEmitter;
  return new Promise((resolve, reject) => {
    const completedEvent = `completed:${jobId}`;
    const failedEvent = `failed:${jobId}`;
    const settle = (outcome: Outcome) => {
      clearTimeout(timer);
      events.off(completedEvent, onCompleted);
      events.off(failedEvent, onFailed);
      closing.off('closing', onClosing);
      if (outcome.isCompleted) resolve(outcome.returnValue);
      else reject(new Error(outcome.reason));
    };
    const onCompleted = (args: { returnvalue: unknown }) =>
      settle({ isCompleted: true, returnValue: args.returnvalue });
    const onFailed = (args: { failedReason: string }) =>
      settle({ isCompleted: false, reason: args.failedReason });
    const onClosing = () =>
      settle({ isCompleted: false, reason: `the queue closed before job ${jobId} finished` });
    // As BullMQ's: a ttl of 0 waits for the finish event however long it takes.
    const timer =
      ttlMs > 0
        ? setTimeout(
            () => settle({ isCompleted: false, reason: `job ${jobId} wait timed out after ${ttlMs} ms` }),
            ttlMs,
          )
        : undefined;
    events.on(completedEvent, onCompleted);
    events.on(failedEvent, onFailed);
    closing.on('closing', onClosing);
    finishedAlready(queue, queueEvents, jobId).then(
      (outcome) => outcome && settle(outcome),
      () => {
        // Redis unreachable: the finish event or the ttl settles the wait.
      },
    );
  });
}

/** The job may have finished before the listeners above were registered: look once QueueEvents listens. */
async function finishedAlready(
  queue: Queue,
  queueEvents: QueueEvents,
  jobId: string,
): Promise<Outcome | undefined> {
  await queueEvents.waitUntilReady();
  const state = await queue.getJobState(jobId);
  if (state !== 'completed' && state !== 'failed' && state !== 'unknown') return undefined;
  // Read after the state: a finished job's return value and reason no longer change.
  const job = await Job.fromId(queue, jobId);
  if (!job) return { isCompleted: false, reason: `job ${jobId} not found` };
  if (state === 'completed') return { isCompleted: true, returnValue: job.returnvalue };
  if (state === 'failed') return { isCompleted: false, reason: job.failedReason };
  return undefined;
}
