import { randomBytes } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import { z } from 'zod';
import { ClipmodError } from '../errors/index.ts';
import type { ErrorClass } from './delivery-outcome.ts';
import type { SecretBox } from './secret-box.ts';
import { type WebhookEventType, webhookEventTypes } from './webhook-event.ts';
import { generateWebhookSecret } from './webhook-signature.ts';

// Webhook endpoints per tenant. Layout under the hash-tagged prefix (one Redis Cluster slot):
//   <prefix>:webhook-endpoint:<id>         JSON: url, event types, sealed secrets — written by the admin API
//   <prefix>:webhook-endpoint-state:<id>   hash: disabled flag and failure streak — written by the worker too
//   <prefix>:webhook-endpoints:<tenant>    sorted set of ids by creation time
// Configuration and state live apart so a delivery outcome never overwrites an admin's edit.

export type DisableReason = 'manual' | 'gone' | 'failing';

const storedSecretSchema = z.object({
  sealed: z.string(),
  createdAt: z.string(),
  /** Null for the current secret; the previous one signs until then after a rotation. */
  expiresAt: z.string().nullable(),
});

const storedEndpointSchema = z.object({
  id: z.string(),
  tenant: z.string(),
  url: z.string(),
  eventTypes: z.array(z.enum(webhookEventTypes)),
  description: z.string(),
  secrets: z.array(storedSecretSchema).min(1),
  createdAt: z.string(),
  updatedAt: z.string(),
});
type StoredEndpoint = z.infer<typeof storedEndpointSchema>;

export type EndpointHealth = {
  /** First failure since the last successful delivery. */
  failingSince?: string;
  lastFailureAt?: string;
  lastErrorClass?: string;
  /** Set when a send was refused because the host resolved to a forbidden address. */
  blockedAt?: string;
};

export type WebhookEndpoint = StoredEndpoint & {
  isEnabled: boolean;
  disabledAt?: string;
  disabledReason?: DisableReason;
  health: EndpointHealth;
};

export type NewEndpoint = {
  tenant: string;
  url: string;
  eventTypes: readonly WebhookEventType[];
  description: string;
  isEnabled: boolean;
};

export type EndpointChanges = Partial<Pick<StoredEndpoint, 'url' | 'eventTypes' | 'description'>>;

export type WebhookEndpointStoreOptions = {
  redis: Redis | Cluster;
  prefix: string;
  secretBox: SecretBox;
  now?: () => number;
  maxEndpointsPerTenant?: number;
};

/** Compare-and-set: an admin edit applies only to the version it read, so concurrent edits never mix. */
const replaceIfUnchanged = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
return 1`;

/** Disabling is a transition: only the first caller gets 1 (and sends the endpoint.disabled event). */
const disableOnce = `
if redis.call('HSETNX', KEYS[1], 'disabledAt', ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'disabledReason', ARGV[2])
return 1`;

export class WebhookEndpointStore {
  readonly #redis: Redis | Cluster;
  readonly #prefix: string;
  readonly #box: SecretBox;
  readonly #now: () => number;
  readonly #maxPerTenant: number;

  constructor(options: WebhookEndpointStoreOptions) {
    this.#redis = options.redis;
    this.#prefix = options.prefix;
    this.#box = options.secretBox;
    this.#now = options.now ?? Date.now;
    this.#maxPerTenant = options.maxEndpointsPerTenant ?? 100;
  }

  /** Creates an endpoint; the returned `secret` is the only time the secret leaves the store. */
  async create(input: NewEndpoint): Promise<{ endpoint: WebhookEndpoint; secret: string }> {
    if ((await this.#redis.zcard(this.#tenantKey(input.tenant))) >= this.#maxPerTenant) {
      throw new ClipmodError('conflict', `a tenant may have at most ${this.#maxPerTenant} webhook endpoints`);
    }
    const id = `ep_${randomBytes(16).toString('base64url')}`;
    const secret = generateWebhookSecret();
    const at = new Date(this.#now()).toISOString();
    const stored: StoredEndpoint = {
      id,
      tenant: input.tenant,
      url: input.url,
      eventTypes: [...new Set(input.eventTypes)],
      description: input.description,
      secrets: [{ sealed: this.#box.seal(secret, id), createdAt: at, expiresAt: null }],
      createdAt: at,
      updatedAt: at,
    };
    const transaction = this.#redis
      .multi()
      .set(this.#recordKey(id), JSON.stringify(stored))
      .zadd(this.#tenantKey(input.tenant), Date.parse(at), id);
    if (!input.isEnabled) transaction.hset(this.#stateKey(id), { disabledAt: at, disabledReason: 'manual' });
    await transaction.exec();
    return {
      endpoint: withState(stored, input.isEnabled ? {} : { disabledAt: at, disabledReason: 'manual' }),
      secret,
    };
  }

  /** The tenant's endpoint, or undefined (another tenant's id looks exactly like a missing one). */
  async get(tenant: string, id: string): Promise<WebhookEndpoint | undefined> {
    const [found] = await this.#load([id]);
    return found?.tenant === tenant ? found : undefined;
  }

  /** A tenant's endpoints, oldest first. */
  async list(tenant: string): Promise<WebhookEndpoint[]> {
    const ids = await this.#redis.zrange(this.#tenantKey(tenant), 0, -1);
    return (await this.#load(ids)).filter((endpoint) => endpoint.tenant === tenant);
  }

  /** Endpoints of `tenant` subscribed to `type`, enabled or not. */
  async subscribers(tenant: string, type: WebhookEventType): Promise<WebhookEndpoint[]> {
    return (await this.list(tenant)).filter((endpoint) => endpoint.eventTypes.includes(type));
  }

  async update(tenant: string, id: string, changes: EndpointChanges): Promise<WebhookEndpoint | undefined> {
    const updated = await this.#modify(tenant, id, (stored) => ({ ...stored, ...changes }));
    // A new URL starts with a clean record: the old host's failures and block flag were not its own.
    if (updated && changes.url !== undefined && changes.url !== updated.before.url) {
      await this.#redis.hdel(
        this.#stateKey(id),
        'failingSince',
        'lastFailureAt',
        'lastErrorClass',
        'blockedAt',
      );
    }
    return updated ? this.get(tenant, id) : undefined;
  }

  /** Enabling also forgets the failure streak and block flag, so the window starts afresh. */
  async setEnabled(tenant: string, id: string, isEnabled: boolean): Promise<WebhookEndpoint | undefined> {
    if (!(await this.get(tenant, id))) return undefined;
    if (isEnabled) await this.#redis.del(this.#stateKey(id));
    else await this.disable(id, 'manual');
    return this.get(tenant, id);
  }

  async remove(tenant: string, id: string): Promise<boolean> {
    if (!(await this.get(tenant, id))) return false;
    await this.#redis
      .multi()
      .del(this.#recordKey(id), this.#stateKey(id))
      .zrem(this.#tenantKey(tenant), id)
      .exec();
    return true;
  }

  /**
   * A new current secret. The previous one keeps signing for `overlapMs` (both signatures are sent), so
   * receivers can switch at their own pace; older ones are dropped.
   */
  async rotateSecret(
    tenant: string,
    id: string,
    overlapMs: number,
  ): Promise<{ endpoint: WebhookEndpoint; secret: string } | undefined> {
    const secret = generateWebhookSecret();
    const nowMs = this.#now();
    const changed = await this.#modify(tenant, id, (stored) => {
      const current = stored.secrets.find((entry) => entry.expiresAt === null) ?? stored.secrets[0]!;
      const previous =
        overlapMs > 0 ? [{ ...current, expiresAt: new Date(nowMs + overlapMs).toISOString() }] : [];
      const createdAt = new Date(nowMs).toISOString();
      return {
        ...stored,
        secrets: [{ sealed: this.#box.seal(secret, id), createdAt, expiresAt: null }, ...previous],
      };
    });
    const endpoint = changed ? await this.get(tenant, id) : undefined;
    return endpoint ? { endpoint, secret } : undefined;
  }

  /** The secrets that sign at `nowMs`, current first. */
  signingSecrets(endpoint: WebhookEndpoint, nowMs: number): string[] {
    return endpoint.secrets
      .filter((entry) => entry.expiresAt === null || Date.parse(entry.expiresAt) > nowMs)
      .map((entry) => this.#box.open(entry.sealed, endpoint.id));
  }

  async recordSuccess(id: string): Promise<void> {
    await this.#redis.hdel(this.#stateKey(id), 'failingSince', 'lastFailureAt', 'lastErrorClass');
  }

  /** Extends the endpoint's failure streak; returns its start, for the auto-disable rule. */
  async recordFailure(
    id: string,
    nowMs: number,
    errorClass: ErrorClass,
  ): Promise<{ failingSinceMs: number }> {
    const key = this.#stateKey(id);
    const transaction = this.#redis
      .multi()
      .hsetnx(key, 'failingSince', String(nowMs))
      .hset(key, { lastFailureAt: String(nowMs), lastErrorClass: errorClass });
    if (errorClass === 'forbidden_address') transaction.hset(key, 'blockedAt', new Date(nowMs).toISOString());
    const results = await transaction.hget(key, 'failingSince').exec();
    const since = Number(results?.at(-1)?.[1]);
    return { failingSinceMs: Number.isFinite(since) ? since : nowMs };
  }

  /** Marks the endpoint disabled; true only for the call that made the transition. */
  async disable(id: string, reason: DisableReason): Promise<boolean> {
    const at = new Date(this.#now()).toISOString();
    return (await this.#redis.eval(disableOnce, 1, this.#stateKey(id), at, reason)) === 1;
  }

  async #load(ids: readonly string[]): Promise<WebhookEndpoint[]> {
    if (ids.length === 0) return [];
    const pipeline = this.#redis.pipeline();
    for (const id of ids) pipeline.get(this.#recordKey(id)).hgetall(this.#stateKey(id));
    const results = (await pipeline.exec()) ?? [];
    return ids.flatMap((_, i) => {
      const [recordError, raw] = results[i * 2] ?? [];
      const [stateError, state] = results[i * 2 + 1] ?? [];
      if (recordError || stateError) throw recordError ?? stateError;
      if (typeof raw !== 'string') return [];
      return [withState(storedEndpointSchema.parse(JSON.parse(raw)), state as Record<string, string>)];
    });
  }

  async #modify(
    tenant: string,
    id: string,
    change: (stored: StoredEndpoint) => StoredEndpoint,
  ): Promise<{ before: StoredEndpoint } | undefined> {
    for (let attempt = 0; attempt < 5; attempt += 1) {
      const raw = await this.#redis.get(this.#recordKey(id));
      if (raw === null) return undefined;
      const before = storedEndpointSchema.parse(JSON.parse(raw));
      if (before.tenant !== tenant) return undefined;
      const after = { ...change(before), updatedAt: new Date(this.#now()).toISOString() };
      const swapped = await this.#redis.eval(
        replaceIfUnchanged,
        1,
        this.#recordKey(id),
        raw,
        JSON.stringify(after),
      );
      if (swapped === 1) return { before };
    }
    throw new ClipmodError('conflict', 'the endpoint is being changed concurrently; try again');
  }

  #recordKey(id: string): string {
    return `${this.#prefix}:webhook-endpoint:${id}`;
  }

  #stateKey(id: string): string {
    return `${this.#prefix}:webhook-endpoint-state:${id}`;
  }

  #tenantKey(tenant: string): string {
    return `${this.#prefix}:webhook-endpoints:${tenant}`;
  }
}

function withState(stored: StoredEndpoint, state: Record<string, string>): WebhookEndpoint {
  const msToIso = (value: string | undefined) => (value ? new Date(Number(value)).toISOString() : undefined);
  const health: EndpointHealth = {
    ...(state.failingSince ? { failingSince: msToIso(state.failingSince)! } : {}),
    ...(state.lastFailureAt ? { lastFailureAt: msToIso(state.lastFailureAt)! } : {}),
    ...(state.lastErrorClass ? { lastErrorClass: state.lastErrorClass } : {}),
    ...(state.blockedAt ? { blockedAt: state.blockedAt } : {}),
  };
  return {
    ...stored,
    isEnabled: !state.disabledAt,
    ...(state.disabledAt ? { disabledAt: state.disabledAt } : {}),
    ...(state.disabledReason ? { disabledReason: state.disabledReason as DisableReason } : {}),
    health,
  };
}
