import type { Queue } from 'bullmq';
import type { AdminAuditLog, AuditActor } from '../audit/index.ts';
import { ClipmodError } from '../errors/index.ts';
import type { ModerationRecord } from '../moderation/index.ts';
import { parsePayload } from '../queue/index.ts';
import type { DeliveryLog, DeliveryRecord } from './delivery-log.ts';
import type { WebhookEndpoint, WebhookEndpointStore } from './endpoint-store.ts';
import { deliveryIdFor, moderationEvent, type WebhookEvent } from './webhook-event.ts';

// Turns events into delivery jobs on the `webhooks` queue: fan-out to subscribed endpoints, the next
// attempt of a failing delivery, and replays. Job ids are (delivery, series, attempt), so a publisher
// that runs twice (a redelivered moderation job) adds nothing twice. A replay is several Redis steps
// (the delivery log, then BullMQ's own scripts), so its admin audit event is appended right after it
// succeeded: a crash in between loses the event of a re-send, never a configuration change.

export type WebhookDispatcherOptions = {
  queue: Queue;
  endpoints: WebhookEndpointStore;
  log: DeliveryLog;
  /** Where replays are recorded. */
  audit: AdminAuditLog;
  now?: () => number;
};

/** Replays per call of replayFailedSince: the rest waits for the next call. */
const maxReplayBatch = 1_000;

export class WebhookDispatcher {
  readonly #queue: Queue;
  readonly #endpoints: WebhookEndpointStore;
  readonly #log: DeliveryLog;
  readonly #audit: AdminAuditLog;
  readonly #now: () => number;

  constructor(options: WebhookDispatcherOptions) {
    this.#queue = options.queue;
    this.#endpoints = options.endpoints;
    this.#log = options.log;
    this.#audit = options.audit;
    this.#now = options.now ?? Date.now;
  }

  /** The inference worker's finish hook: one event per terminal moderation. Idempotent. */
  async publishModeration(record: ModerationRecord): Promise<number> {
    const event = moderationEvent(record);
    return event ? this.publish(event) : 0;
  }

  /**
   * Records one delivery per subscribed endpoint and enqueues the enabled ones; disabled endpoints get
   * a failed delivery (their backlog, for replay once re-enabled). Returns the number of jobs added.
   */
  async publish(event: WebhookEvent, options: { excludeEndpointId?: string } = {}): Promise<number> {
    const subscribers = (await this.#endpoints.subscribers(event.tenant, event.type)).filter(
      (endpoint) => endpoint.id !== options.excludeEndpointId,
    );
    if (subscribers.length === 0) return 0;
    await this.#log.saveEvent(event);
    let enqueued = 0;
    for (const endpoint of subscribers) {
      const delivery = await this.#log.open(this.#newDelivery(event, endpoint));
      // Enqueue until the first attempt is logged: while the job exists its id deduplicates the add,
      // and if a crash lost it between open() and add(), this re-adds it.
      const isUnstarted =
        delivery.status === 'pending' && delivery.series === 0 && delivery.attemptCount === 0;
      if (isUnstarted) {
        await this.enqueue(delivery, 0, 1, 0);
        enqueued += 1;
      }
    }
    return enqueued;
  }

  /** Adds the job of one attempt, `delayMs` from now. */
  async enqueue(delivery: DeliveryRecord, series: number, attempt: number, delayMs: number): Promise<void> {
    const payload = parsePayload('webhook.deliver', {
      deliveryId: delivery.id,
      eventId: delivery.eventId,
      endpointId: delivery.endpointId,
      tenant: delivery.tenant,
      type: delivery.type,
      series,
      attempt,
      ...(delivery.moderationId ? { moderationId: delivery.moderationId } : {}),
      ...(delivery.requestId ? { requestId: delivery.requestId } : {}),
    });
    await this.#queue.add('webhook.deliver', payload, {
      jobId: `${delivery.id}.${series}.${attempt}`,
      ...(delayMs > 0 ? { delay: delayMs } : {}),
    });
  }

  /** Sends one delivery again from attempt 1, same webhook-id and body; pending retries stand down. */
  async replay(tenant: string, deliveryId: string, actor: AuditActor): Promise<DeliveryRecord> {
    const delivery = await this.#log.get(deliveryId);
    if (!delivery || delivery.tenant !== tenant) {
      throw new ClipmodError('not_found', `no webhook delivery ${deliveryId}`);
    }
    const endpoint = await this.#endpoints.get(tenant, delivery.endpointId);
    if (!endpoint) throw new ClipmodError('not_found', `the endpoint of delivery ${deliveryId} was deleted`);
    if (!endpoint.isEnabled) {
      throw new ClipmodError('conflict', `endpoint ${endpoint.id} is disabled; enable it before replaying`);
    }
    if ((await this.#log.eventBody(delivery.eventId)) === undefined) {
      throw new ClipmodError('conflict', `event ${delivery.eventId} is past the retention window`);
    }
    const series = await this.#log.startReplay(deliveryId, this.#now());
    await this.enqueue(delivery, series, 1, 0);
    await this.#audit.append(actor, {
      action: 'webhook-delivery.replay',
      tenant,
      resourceId: deliveryId,
      changes: { endpointId: endpoint.id, eventId: delivery.eventId, series },
    });
    return (await this.#log.get(deliveryId)) ?? delivery;
  }

  /** Replays every failed delivery of an endpoint created since `sinceMs` (up to 1,000 per call). */
  async replayFailedSince(
    tenant: string,
    endpointId: string,
    sinceMs: number,
    actor: AuditActor,
  ): Promise<{ replayed: number }> {
    const endpoint = await this.#endpoints.get(tenant, endpointId);
    if (!endpoint) throw new ClipmodError('not_found', `no webhook endpoint ${endpointId}`);
    if (!endpoint.isEnabled) {
      throw new ClipmodError('conflict', `endpoint ${endpointId} is disabled; enable it before replaying`);
    }
    const failed = await this.#log.failedSince(endpointId, sinceMs, maxReplayBatch);
    let replayed = 0;
    for (const delivery of failed) {
      if ((await this.#log.eventBody(delivery.eventId)) === undefined) continue;
      await this.enqueue(delivery, await this.#log.startReplay(delivery.id, this.#now()), 1, 0);
      replayed += 1;
    }
    await this.#audit.append(actor, {
      action: 'webhook-endpoint.replay',
      tenant,
      resourceId: endpointId,
      changes: { since: new Date(sinceMs).toISOString(), replayed },
    });
    return { replayed };
  }

  #newDelivery(event: WebhookEvent, endpoint: WebhookEndpoint): DeliveryRecord {
    const nowMs = this.#now();
    return {
      id: deliveryIdFor(event.id, endpoint.id),
      tenant: event.tenant,
      endpointId: endpoint.id,
      eventId: event.id,
      type: event.type,
      ...(event.moderationId ? { moderationId: event.moderationId } : {}),
      ...(event.requestId ? { requestId: event.requestId } : {}),
      status: endpoint.isEnabled ? 'pending' : 'failed',
      series: 0,
      attemptCount: 0,
      createdAt: nowMs,
      updatedAt: nowMs,
      ...(endpoint.isEnabled ? {} : { finalReason: 'endpoint_disabled' as const }),
    };
  }
}
