import type { Job } from 'bullmq';
import { isClipmodError } from '../../shared/errors/index.ts';
import type { Logger } from '../../shared/logger/index.ts';
import { type Cidr, type HostLookup, safeFetch, webhookFetchDefaults } from '../../shared/net/index.ts';
import { type JobPayload, parsePayload } from '../../shared/queue/index.ts';
import type { FaultInjector, FaultPoint } from '../../shared/runtime/index.ts';
import {
  type AttemptDecision,
  type AttemptResult,
  type DeliveryLog,
  type DeliveryRecord,
  type DisableReason,
  decideAttempt,
  type FinalReason,
  isDisableDue,
  isOperationalEvent,
  responseExcerpt,
  stableId,
  type WebhookDispatcher,
  type WebhookEndpoint,
  type WebhookEndpointStore,
  type WebhookEventType,
  webhookHeaders,
} from '../../shared/webhooks/index.ts';

// One job = one attempt of one delivery: sign, send through the SSRF-safe client (checked again at
// every send), log the attempt, then schedule the next one as a new delayed job, give up, or disable
// the endpoint. Receivers' answers are outcomes; only infrastructure faults throw (and BullMQ retries).

export type DeliverySettings = {
  /** CLIPMOD_WEBHOOK_RETRY_SCHEDULE_MS. */
  schedule: readonly number[];
  jitter: number;
  /** CLIPMOD_WEBHOOK_TIMEOUT_MS: the whole attempt, connect to last byte. */
  timeoutMs: number;
  /** CLIPMOD_WEBHOOK_DISABLE_AFTER_MS; 0 never disables. */
  disableAfterMs: number;
  /** CLIPMOD_ALLOW_PRIVATE_NETWORKS, parsed. */
  allowList: readonly Cidr[];
  /** Injected by tests; the system resolver otherwise. */
  lookup?: HostLookup;
};

export type DeliveryProcessorDeps = {
  endpoints: WebhookEndpointStore;
  log: DeliveryLog;
  dispatcher: WebhookDispatcher;
  settings: DeliverySettings;
  logger: Logger;
  /** Epoch ms; tests inject a fake clock (signatures, schedule and the disable window all follow it). */
  now?: () => number;
  random?: () => number;
  observeAttempt?(outcome: string, seconds: number): void;
  onEndpointDisabled?(reason: DisableReason): void;
  /** Test-only crash points around the acknowledgement (RELIABILITY.md Q2). */
  faults?: FaultInjector;
};

type SentAttempt = {
  result: AttemptResult;
  httpStatus?: number;
  latencyMs: number;
  response: string;
  isResponseTruncated: boolean;
};

type Context = {
  payload: JobPayload<'webhook.deliver'>;
  delivery: DeliveryRecord;
  endpoint: WebhookEndpoint;
  /** Crashes here when a test asked for it; a no-op otherwise. */
  crashPoint(point: FaultPoint): void;
};

export function createDeliveryProcessor(deps: DeliveryProcessorDeps) {
  const now = deps.now ?? Date.now;
  const random = deps.random ?? Math.random;
  const { settings } = deps;

  async function send(
    endpoint: WebhookEndpoint,
    eventId: string,
    body: string,
    atMs: number,
  ): Promise<SentAttempt> {
    const secrets = deps.endpoints.signingSecrets(endpoint, atMs);
    const headers = {
      'content-type': 'application/json',
      'user-agent': 'clipmod-webhooks',
      ...webhookHeaders({ id: eventId, timestampSeconds: atMs / 1000, body, secrets }),
    };
    const startedAt = performance.now();
    const latency = () => Math.round(performance.now() - startedAt);
    try {
      const response = await safeFetch(endpoint.url, {
        ...webhookFetchDefaults,
        headers,
        body: Buffer.from(body, 'utf8'),
        allowList: settings.allowList,
        ...(settings.lookup ? { lookup: settings.lookup } : {}),
        timeoutMs: settings.timeoutMs,
        // A receiver that sits on the headers is as slow as one that drips the body: one budget for both.
        headersTimeoutMs: settings.timeoutMs,
      });
      const retryAfter = response.headers['retry-after'];
      return {
        result: { kind: 'response', status: response.status, retryAfter },
        httpStatus: response.status,
        latencyMs: latency(),
        ...responseExcerpt(response.body, response.isTruncated),
      };
    } catch (error) {
      if (!isClipmodError(error)) throw error;
      const reason = typeof error.details.reason === 'string' ? error.details.reason : undefined;
      return {
        result: { kind: 'error', code: error.code, reason },
        latencyMs: latency(),
        response: error.message,
        isResponseTruncated: false,
      };
    }
  }

  async function disableEndpoint(context: Context, reason: DisableReason, atMs: number): Promise<void> {
    const { endpoint } = context;
    if (!(await deps.endpoints.disable(endpoint.id, reason))) return;
    deps.logger.warn(
      { endpointId: endpoint.id, tenant: endpoint.tenant, reason },
      'webhook endpoint disabled',
    );
    deps.onEndpointDisabled?.(reason);
    const data = {
      endpointId: endpoint.id,
      url: endpoint.url,
      reason,
      failingSince: endpoint.health.failingSince,
    };
    await deps.dispatcher.publish(
      {
        id: stableId('msg', endpoint.tenant, 'endpoint.disabled', endpoint.id, String(atMs)),
        tenant: endpoint.tenant,
        type: 'endpoint.disabled',
        timestamp: new Date(atMs).toISOString(),
        data,
      },
      { excludeEndpointId: endpoint.id },
    );
  }

  async function publishExhausted({ payload, delivery }: Context, lastErrorClass: string, atMs: number) {
    if (isOperationalEvent(payload.type as WebhookEventType)) return;
    await deps.dispatcher.publish(
      {
        id: stableId('msg', payload.tenant, 'delivery.exhausted', delivery.id, String(payload.series)),
        tenant: payload.tenant,
        type: 'delivery.exhausted',
        timestamp: new Date(atMs).toISOString(),
        data: {
          deliveryId: delivery.id,
          endpointId: payload.endpointId,
          eventId: payload.eventId,
          eventType: payload.type,
          attempts: payload.attempt,
          lastErrorClass,
          ...(payload.moderationId ? { moderationId: payload.moderationId } : {}),
        },
      },
      { excludeEndpointId: payload.endpointId },
    );
  }

  /** Endpoint health, auto-disable, then the next job or the give-up event. */
  async function follow(context: Context, decision: AttemptDecision, atMs: number): Promise<void> {
    const { payload, delivery, endpoint } = context;
    if (decision.kind === 'delivered') {
      await deps.endpoints.recordSuccess(endpoint.id);
      return;
    }
    const streak = await deps.endpoints.recordFailure(endpoint.id, atMs, decision.errorClass);
    const isGone = decision.kind === 'give-up' && decision.reason === 'gone';
    const isDue = isDisableDue(
      { failingSinceMs: streak.failingSinceMs, lastFailureMs: atMs },
      settings.disableAfterMs,
    );
    if (isGone || isDue) await disableEndpoint(context, isGone ? 'gone' : 'failing', atMs);
    if (decision.kind === 'retry' && isDue) {
      await finish(delivery.id, payload.series, 'endpoint_disabled', atMs);
    } else if (decision.kind === 'retry') {
      await deps.dispatcher.enqueue(delivery, payload.series, payload.attempt + 1, decision.delayMs);
    } else if (decision.reason === 'attempts_exhausted') {
      deps.logger.warn({ deliveryId: delivery.id, attempts: payload.attempt }, 'webhook delivery gave up');
      await publishExhausted(context, decision.errorClass, atMs);
    }
  }

  function finish(id: string, series: number, finalReason: FinalReason, atMs: number) {
    return deps.log.finish(id, series, { status: 'failed', at: atMs, finalReason });
  }

  async function attempt(context: Context, body: string): Promise<AttemptDecision> {
    const { payload, delivery, endpoint } = context;
    const atMs = now();
    const sent = await send(endpoint, payload.eventId, body, atMs);
    if (sent.result.kind === 'response' && sent.result.status < 300) context.crashPoint('webhook-sent-crash');
    const decision = decideAttempt(sent.result, payload.attempt, {
      schedule: settings.schedule,
      jitter: settings.jitter,
      now: atMs,
      random,
    });
    const errorClass = decision.kind === 'delivered' ? undefined : decision.errorClass;
    deps.observeAttempt?.(errorClass ?? 'delivered', sent.latencyMs / 1000);
    logAttempt(deps.logger, payload, sent, decision);
    const isCurrent = await deps.log.recordAttempt(
      delivery.id,
      {
        series: payload.series,
        attempt: payload.attempt,
        at: atMs,
        outcome: errorClass ? 'failed' : 'delivered',
        ...(sent.httpStatus === undefined ? {} : { httpStatus: sent.httpStatus }),
        latencyMs: sent.latencyMs,
        ...(errorClass ? { errorClass } : {}),
        response: sent.response,
        isResponseTruncated: sent.isResponseTruncated,
      },
      {
        status:
          decision.kind === 'delivered' ? 'delivered' : decision.kind === 'retry' ? 'pending' : 'failed',
        at: atMs,
        ...(decision.kind === 'retry' ? { nextAttemptAt: atMs + decision.delayMs } : {}),
        ...(decision.kind === 'give-up' ? { finalReason: decision.reason } : {}),
        ...(errorClass ? { lastErrorClass: errorClass } : {}),
      },
    );
    // A replay started meanwhile owns the delivery now; this series schedules nothing more.
    if (isCurrent) await follow(context, decision, atMs);
    if (decision.kind === 'delivered') context.crashPoint('webhook-ack-crash');
    return decision;
  }

  return async function process(job: Job): Promise<string> {
    const payload = parsePayload('webhook.deliver', job.data);
    const delivery = await deps.log.get(payload.deliveryId);
    if (!delivery || delivery.series !== payload.series || delivery.status !== 'pending') return 'superseded';
    const endpoint = await deps.endpoints.get(payload.tenant, payload.endpointId);
    const body = endpoint?.isEnabled ? await deps.log.eventBody(payload.eventId) : undefined;
    if (endpoint === undefined || !endpoint.isEnabled || body === undefined) {
      const reason = !endpoint
        ? 'endpoint_deleted'
        : !endpoint.isEnabled
          ? 'endpoint_disabled'
          : 'event_expired';
      await finish(delivery.id, payload.series, reason, now());
      return reason;
    }
    const crashPoint = crashPointFor(deps.faults, job, body);
    return (await attempt({ payload, delivery, endpoint, crashPoint }, body)).kind;
  };
}

/**
 * The crash points armed for this job: only with fault injection on, only on the job's first start
 * (a redelivered job must go through, or the test would only measure maxStalledCount), and only when
 * the moderation's metadata, carried in the event body, names the point.
 */
function crashPointFor(
  faults: FaultInjector | undefined,
  job: Job,
  body: string,
): (point: FaultPoint) => void {
  if (!faults?.isEnabled || job.stalledCounter > 0) return () => {};
  const metadata = (JSON.parse(body) as { data?: { metadata?: unknown } }).data?.metadata;
  return (point) => faults.crashIfRequested(metadata, point);
}

/** One line per attempt, carrying the submission's request id: the last hop of a moderation's trail. */
function logAttempt(
  logger: Logger,
  payload: JobPayload<'webhook.deliver'>,
  sent: SentAttempt,
  decision: AttemptDecision,
): void {
  logger.info(
    {
      requestId: payload.requestId,
      moderationId: payload.moderationId,
      deliveryId: payload.deliveryId,
      endpointId: payload.endpointId,
      attempt: payload.attempt,
      outcome: decision.kind === 'delivered' ? 'delivered' : decision.errorClass,
      decision: decision.kind,
      httpStatus: sent.httpStatus,
      latencyMs: sent.latencyMs,
    },
    'webhook attempt',
  );
}
