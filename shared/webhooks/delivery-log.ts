import type { Cluster, Redis } from 'ioredis';
import type { WebhookEvent, WebhookEventType } from './webhook-event.ts';
import { eventBody } from './webhook-event.ts';

// Event bodies, deliveries and every attempt, kept for the retention window. Layout under the prefix:
//   <prefix>:webhook-event:<eventId>                  the body bytes, written once (retries are identical)
//   <prefix>:webhook-delivery:<deliveryId>            hash: status, series, counts, last error
//   <prefix>:webhook-attempts:<deliveryId>            list of attempt JSON (latest 100)
//   <prefix>:webhook-endpoint-deliveries:<endpointId> sorted set of delivery ids by creation time
// A replay starts a new *series*; jobs of an older series find it changed and stand down.

export const deliveryStatuses = ['pending', 'delivered', 'failed'] as const;
export type DeliveryStatus = (typeof deliveryStatuses)[number];

export type FinalReason =
  | 'gone'
  | 'attempts_exhausted'
  | 'endpoint_disabled'
  | 'endpoint_deleted'
  | 'event_expired';

export type DeliveryRecord = {
  id: string;
  tenant: string;
  endpointId: string;
  eventId: string;
  type: WebhookEventType;
  moderationId?: string;
  /** The submitting request's `x-request-id` (moderation events): logged with every attempt. */
  requestId?: string;
  status: DeliveryStatus;
  series: number;
  attemptCount: number;
  /** Epoch ms. */
  createdAt: number;
  updatedAt: number;
  lastAttemptAt?: number;
  nextAttemptAt?: number;
  lastErrorClass?: string;
  lastHttpStatus?: number;
  finalReason?: FinalReason;
};

export type AttemptRecord = {
  series: number;
  attempt: number;
  /** Epoch ms on the worker's clock. */
  at: number;
  outcome: 'delivered' | 'failed';
  httpStatus?: number;
  latencyMs: number;
  errorClass?: string;
  /** At most 4 KiB of what the receiver answered, as text. */
  response: string;
  isResponseTruncated: boolean;
};

export type DeliveryUpdate = {
  status: DeliveryStatus;
  at: number;
  nextAttemptAt?: number;
  finalReason?: FinalReason;
  lastErrorClass?: string;
  lastHttpStatus?: number;
};

export type DeliveryLogOptions = { redis: Redis | Cluster; prefix: string; retentionSeconds: number };

const responseExcerptBytes = 4_096;
const keptAttempts = 100;

/** The response as the delivery log keeps it: at most 4 KiB, decoded leniently. */
export function responseExcerpt(body: Buffer, isTruncated = false) {
  const excerpt = body.subarray(0, responseExcerptBytes);
  return {
    response: excerpt.toString('utf8'),
    isResponseTruncated: isTruncated || body.length > excerpt.length,
  };
}

const createIfAbsent = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
redis.call('EXPIRE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[1])
return 1`;

/** Always logs the attempt (it happened); updates the status only if no replay superseded its series. */
const recordForSeries = `
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if ARGV[2] ~= '' then
  redis.call('RPUSH', KEYS[2], ARGV[2])
  redis.call('LTRIM', KEYS[2], -${keptAttempts}, -1)
  redis.call('EXPIRE', KEYS[2], ARGV[3])
  redis.call('HINCRBY', KEYS[1], 'attemptCount', 1)
end
if redis.call('HGET', KEYS[1], 'series') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1`;

export class DeliveryLog {
  readonly #redis: Redis | Cluster;
  readonly #prefix: string;
  readonly #ttlSeconds: number;

  constructor(options: DeliveryLogOptions) {
    this.#redis = options.redis;
    this.#prefix = options.prefix;
    this.#ttlSeconds = options.retentionSeconds;
  }

  /** Stores the body once: a second publish of the same event keeps the first bytes. */
  async saveEvent(event: WebhookEvent): Promise<void> {
    await this.#redis.set(this.#eventKey(event.id), eventBody(event), 'EX', this.#ttlSeconds, 'NX');
  }

  async eventBody(eventId: string): Promise<string | undefined> {
    return (await this.#redis.get(this.#eventKey(eventId))) ?? undefined;
  }

  /** Creates the delivery unless it exists; returns it as stored either way. */
  async open(delivery: DeliveryRecord): Promise<DeliveryRecord> {
    const cutoffMs = delivery.createdAt - this.#ttlSeconds * 1000;
    await this.#redis.eval(
      createIfAbsent,
      2,
      this.#deliveryKey(delivery.id),
      this.#endpointKey(delivery.endpointId),
      this.#ttlSeconds,
      delivery.createdAt,
      delivery.id,
      cutoffMs,
      ...toFields(delivery),
    );
    return (await this.get(delivery.id)) ?? delivery;
  }

  async get(id: string): Promise<DeliveryRecord | undefined> {
    return fromFields(await this.#redis.hgetall(this.#deliveryKey(id)));
  }

  async attempts(id: string): Promise<AttemptRecord[]> {
    const raw = await this.#redis.lrange(this.#attemptsKey(id), 0, -1);
    return raw.map((entry) => JSON.parse(entry) as AttemptRecord);
  }

  /** Logs one attempt and moves the delivery on; false when a replay superseded `series` meanwhile. */
  async recordAttempt(id: string, attempt: AttemptRecord, update: DeliveryUpdate): Promise<boolean> {
    return this.#apply(id, attempt.series, JSON.stringify(attempt), {
      ...update,
      lastAttemptAt: attempt.at,
      ...(attempt.httpStatus === undefined ? {} : { lastHttpStatus: attempt.httpStatus }),
    });
  }

  /** Ends a delivery without an attempt (endpoint gone or disabled, event expired). */
  async finish(id: string, series: number, update: DeliveryUpdate): Promise<boolean> {
    return this.#apply(id, series, '', update);
  }

  /** Starts a new series (replay): status pending, and older series' jobs stand down. */
  async startReplay(id: string, nowMs: number): Promise<number> {
    const key = this.#deliveryKey(id);
    const results = await this.#redis
      .multi()
      .hincrby(key, 'series', 1)
      .hset(key, { status: 'pending', updatedAt: nowMs, nextAttemptAt: '', finalReason: '' })
      .expire(key, this.#ttlSeconds)
      .exec();
    return Number(results?.[0]?.[1]);
  }

  /** Newest first; `beforeMs` pages back, `status` filters (scanning at most 5,000 deliveries). */
  async listForEndpoint(
    endpointId: string,
    query: { limit: number; beforeMs?: number | undefined; status?: DeliveryStatus | undefined },
  ): Promise<DeliveryRecord[]> {
    const found: DeliveryRecord[] = [];
    const max = query.beforeMs === undefined ? '+inf' : `(${query.beforeMs}`;
    for (let offset = 0; found.length < query.limit && offset < 5_000; offset += 200) {
      const ids = await this.#redis.zrevrangebyscore(
        this.#endpointKey(endpointId),
        max,
        '-inf',
        'LIMIT',
        offset,
        200,
      );
      const page = await this.#getMany(ids);
      found.push(
        ...page.filter((delivery) => query.status === undefined || delivery.status === query.status),
      );
      if (ids.length < 200) break;
    }
    return found.slice(0, query.limit);
  }

  /** Failed deliveries of an endpoint created at or after `sinceMs`, oldest first. */
  async failedSince(endpointId: string, sinceMs: number, limit: number): Promise<DeliveryRecord[]> {
    const ids = await this.#redis.zrangebyscore(
      this.#endpointKey(endpointId),
      sinceMs,
      '+inf',
      'LIMIT',
      0,
      limit,
    );
    return (await this.#getMany(ids)).filter((delivery) => delivery.status === 'failed');
  }

  async #getMany(ids: readonly string[]): Promise<DeliveryRecord[]> {
    if (ids.length === 0) return [];
    const pipeline = this.#redis.pipeline();
    for (const id of ids) pipeline.hgetall(this.#deliveryKey(id));
    const results = (await pipeline.exec()) ?? [];
    return results.flatMap(([error, fields]) => {
      if (error) throw error;
      const delivery = fromFields(fields as Record<string, string>);
      return delivery ? [delivery] : [];
    });
  }

  async #apply(
    id: string,
    series: number,
    attemptJson: string,
    update: Partial<DeliveryRecord> & DeliveryUpdate,
  ) {
    const { at, ...fields } = update;
    const result = await this.#redis.eval(
      recordForSeries,
      2,
      this.#deliveryKey(id),
      this.#attemptsKey(id),
      String(series),
      attemptJson,
      this.#ttlSeconds,
      ...toFields({ nextAttemptAt: undefined, finalReason: undefined, ...fields, updatedAt: at }),
    );
    return result === 1;
  }

  #eventKey(id: string): string {
    return `${this.#prefix}:webhook-event:${id}`;
  }

  #deliveryKey(id: string): string {
    return `${this.#prefix}:webhook-delivery:${id}`;
  }

  #attemptsKey(id: string): string {
    return `${this.#prefix}:webhook-attempts:${id}`;
  }

  #endpointKey(endpointId: string): string {
    return `${this.#prefix}:webhook-endpoint-deliveries:${endpointId}`;
  }
}

/** Hash fields are strings; an empty string means "absent" so updates can clear a field. */
function toFields(record: Partial<DeliveryRecord>): string[] {
  return Object.entries(record).flatMap(([name, value]) => [name, value === undefined ? '' : String(value)]);
}

const numericFields = new Set([
  'series',
  'attemptCount',
  'createdAt',
  'updatedAt',
  'lastAttemptAt',
  'nextAttemptAt',
  'lastHttpStatus',
]);

function fromFields(fields: Record<string, string>): DeliveryRecord | undefined {
  if (!fields.id) return undefined;
  const entries = Object.entries(fields)
    .filter(([, value]) => value !== '')
    .map(([name, value]) => [name, numericFields.has(name) ? Number(value) : value]);
  return { series: 0, attemptCount: 0, ...Object.fromEntries(entries) } as DeliveryRecord;
}
