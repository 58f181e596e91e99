import { createHash } from 'node:crypto';
import { type ModerationRecord, publicModeration } from '../moderation/index.ts';

// The events clipmod sends and their ids. Ids are derived from what the event is about (never random),
// so a moderation job that runs twice publishes the same event, and `webhook-id` stays the same on
// every retry and replay: receivers deduplicate on it.

export const webhookEventTypes = [
  'moderation.completed',
  'moderation.failed',
  /** A retained embedding re-scored under a new live policy version changed outcome (old and new verdicts). */
  'moderation.rescored',
  /** Operational: an endpoint was disabled (410 Gone, or failing for the whole disable window). */
  'endpoint.disabled',
  /** Operational: a delivery used up its retry schedule without a 2xx. */
  'delivery.exhausted',
] as const;
export type WebhookEventType = (typeof webhookEventTypes)[number];

/** What a new endpoint receives unless it names its event types. */
export const defaultEventTypes: readonly WebhookEventType[] = ['moderation.completed', 'moderation.failed'];

export function isOperationalEvent(type: WebhookEventType): boolean {
  return type === 'endpoint.disabled' || type === 'delivery.exhausted';
}

export type WebhookEvent = {
  /** The `webhook-id` header: `msg_` + 24 base64url characters. */
  id: string;
  tenant: string;
  type: WebhookEventType;
  /** ISO 8601: when the thing happened, not when it was sent. */
  timestamp: string;
  data: unknown;
  moderationId?: string;
  /** The `x-request-id` of the submission, carried to the delivery jobs so their log lines name it. */
  requestId?: string;
};

/** A stable id: the same parts always give the same id, different parts practically never collide. */
export function stableId(prefix: string, ...parts: readonly string[]): string {
  const digest = createHash('sha256').update(parts.join('\u0000'), 'utf8').digest('base64url');
  return `${prefix}_${digest.slice(0, 24)}`;
}

/** One delivery is one event to one endpoint; its retries and replays share the id. */
export function deliveryIdFor(eventId: string, endpointId: string): string {
  return stableId('dlv', eventId, endpointId);
}

/** The event a terminal moderation publishes; undefined while it is still queued or processing. */
export function moderationEvent(record: ModerationRecord): WebhookEvent | undefined {
  if (record.status !== 'completed' && record.status !== 'failed') return undefined;
  const type: WebhookEventType = record.status === 'completed' ? 'moderation.completed' : 'moderation.failed';
  return {
    id: stableId('msg', record.tenant, record.id, type),
    tenant: record.tenant,
    type,
    timestamp: record.completedAt ?? record.createdAt,
    data: publicModeration(record),
    moderationId: record.id,
    ...(record.requestId ? { requestId: record.requestId } : {}),
  };
}

/** The request body: `{type, timestamp, data}`, built once per event and stored, so retries are byte-identical. */
export function eventBody(event: WebhookEvent): string {
  return JSON.stringify({ type: event.type, timestamp: event.timestamp, data: event.data });
}
