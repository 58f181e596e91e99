import type { Queue, Worker } from 'bullmq';
import type { Cluster, Redis } from 'ioredis';
import { counterFor, gaugeFor, metricCatalog, type Registry, readWithinScrape } from '../metrics/index.ts';
import { queueNames } from './job-catalog.ts';
import { openQueue } from './open-queue.ts';

// Queue metrics every process can serve: depth by state and attached workers, read from Redis when
// Prometheus scrapes (so they are right even in a process that never touches the queue otherwise),
// and job outcomes counted from a worker's events.

const observedQueues = new WeakMap<Registry, Map<string, Queue>>();

/** Reports `clipmod_queue_jobs{queue,state}` and `clipmod_queue_workers{queue}` for these queues. */
export function observeQueueDepth(registry: Registry, queues: readonly Queue[]): void {
  let observed = observedQueues.get(registry);
  if (!observed) {
    const known = new Map<string, Queue>();
    observed = known;
    observedQueues.set(registry, known);
    gaugeFor(registry, metricCatalog.queueJobs, async function collect() {
      this.reset();
      for (const [name, queue] of known) {
        const counts = await readWithinScrape(queue.getJobCounts());
        for (const [state, count] of Object.entries(counts ?? {})) this.set({ queue: name, state }, count);
      }
    });
    gaugeFor(registry, metricCatalog.queueWorkers, async function collect() {
      this.reset();
      for (const [name, queue] of known) {
        const workers = await readWithinScrape(queue.getWorkersCount());
        if (workers !== undefined) this.set({ queue: name }, workers);
      }
    });
  }
  for (const queue of queues) observed.set(queue.name, queue);
}

/** Counts `clipmod_jobs_total{queue,name,outcome}` from a worker's completed, failed and stalled events. */
export function observeJobOutcomes(registry: Registry, worker: Worker): void {
  const jobs = counterFor(registry, metricCatalog.jobs);
  const queue = worker.name;
  worker.on('completed', (job) => jobs.inc({ queue, name: job.name, outcome: 'completed' }));
  // Fires for every failed attempt, retried or final, like BullMQ's own `failed` event.
  worker.on('failed', (job) => jobs.inc({ queue, name: job?.name ?? 'unknown', outcome: 'failed' }));
  worker.on('stalled', () => jobs.inc({ queue, name: 'unknown', outcome: 'stalled' }));
}

/** A Queue for every queue of the catalog, for depth metrics and the admin board (no job options). */
export function openCatalogQueues(connection: Redis | Cluster, prefix: string): Queue[] {
  return Object.values(queueNames).map((name) => openQueue(name, { connection, prefix }));
}
