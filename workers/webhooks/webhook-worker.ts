import { Worker } from 'bullmq';
import type { Cluster, Redis } from 'ioredis';
import { counterFor, histogramFor, metricCatalog, type Registry } from '../../shared/metrics/index.ts';
import { observeJobOutcomes, queueNames } from '../../shared/queue/index.ts';
import type { Component } from '../../shared/runtime/index.ts';
import { createDeliveryProcessor, type DeliveryProcessorDeps } from './delivery-processor.ts';

export type WebhookWorkerOptions = Omit<DeliveryProcessorDeps, 'observeAttempt' | 'onEndpointDisabled'> & {
  /** A worker-role connection (maxRetriesPerRequest null); BullMQ duplicates it for blocking calls. */
  connection: Redis | Cluster;
  prefix: string;
  /** CLIPMOD_WEBHOOK_CONCURRENCY: attempts in flight at once; a hostile receiver holds one slot until its timeout. */
  concurrency: number;
  /** CLIPMOD_LOCK_DURATION_MS; the worker keeps at least twice the attempt timeout. */
  lockDurationMs: number;
  registry: Registry;
};

/**
 * The webhook worker as a lifecycle component, on its own queue so a slow receiver never delays
 * inference. stop() closes the worker, which lets attempts in flight finish (each is bounded by the
 * per-attempt timeout).
 */
export function createWebhookWorker(options: WebhookWorkerOptions): Component & { isRunning(): boolean } {
  let worker: Worker | undefined;
  const metrics = webhookMetrics(options.registry);
  const lockDurationMs = Math.max(options.lockDurationMs, options.settings.timeoutMs * 2);
  return {
    name: 'webhook-worker',
    isRunning: () => worker?.isRunning() ?? false,
    async start() {
      const processor = createDeliveryProcessor({
        ...options,
        observeAttempt: (outcome, seconds) => {
          metrics.attempts.inc({ outcome });
          metrics.attemptSeconds.observe(seconds);
        },
        onEndpointDisabled: (reason) => metrics.disabled.inc({ reason }),
      });
      worker = new Worker(queueNames.webhooks, processor, {
        connection: options.connection,
        prefix: options.prefix,
        concurrency: options.concurrency,
        // An attempt is bounded by its timeout; the lock must outlast it with room for Redis writes.
        lockDuration: lockDurationMs,
        stalledInterval: Math.max(1_000, Math.floor(lockDurationMs / 2)),
        maxStalledCount: 2,
        autorun: false,
      });
      worker.on('error', (error) => options.logger.error({ err: error }, 'webhook worker error'));
      observeJobOutcomes(options.registry, worker);
      worker.on('failed', (job, error) =>
        options.logger.error({ jobId: job?.id, err: error }, 'webhook job failed (infrastructure)'),
      );
      void worker.run();
      options.logger.info({ concurrency: options.concurrency }, 'webhook worker taking jobs');
    },
    async stop() {
      await worker?.close();
    },
  };
}

/** Definitions live in the shared metric catalog (dashboards and alerts are checked against it). */
function webhookMetrics(registry: Registry) {
  return {
    attempts: counterFor(registry, metricCatalog.webhookAttempts),
    attemptSeconds: histogramFor(registry, metricCatalog.webhookAttemptDuration),
    disabled: counterFor(registry, metricCatalog.webhookEndpointsDisabled),
  };
}
