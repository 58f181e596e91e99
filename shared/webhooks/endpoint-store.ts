import { randomBytes } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import { z } from 'zod';
import { type AdminAuditChange, AdminAuditLog, type AuditActor, fieldChanges } from '../audit/index.ts';
import { ClipmodError } from '../errors/index.ts';
import type { ErrorClass } from './delivery-outcome.ts';
import { disableOnceScript, modifyScript, removeScript } from './endpoint-store-scripts.ts';
import type { SecretBox } from './secret-box.ts';
import { type WebhookEventType, webhookEventTypes } from './webhook-event.ts';
import { generateWebhookSecret } from './webhook-signature.ts';

// Webhook endpoints per tenant. Layout under the hash-tagged prefix (one Redis Cluster slot):
//   <prefix>:webhook-endpoint:<id>         JSON: url, event types, sealed secrets — written by the admin API
//   <prefix>:webhook-endpoint-state:<id>   hash: disabled flag and failure streak — written by the worker too
//   <prefix>:webhook-endpoints:<tenant>    sorted set of ids by creation time
// Configuration and state live apart so a delivery outcome never overwrites an admin's edit. Admin
// changes (create, update, enable/disable, rotate, delete) append to the admin audit log in the same
// MULTI or script; the worker's own writes (health, automatic disabling) are not admin changes.

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

export type EndpointChanges = Partial<Pick<StoredEndpoint, 'url' | 'eventTypes' | 'description'>> & {
  /** true enables (and forgets the failure streak), false disables (reason `manual`). */
  isEnabled?: boolean;
};

export type WebhookEndpointStoreOptions = {
  redis: Redis | Cluster;
  prefix: string;
  secretBox: SecretBox;
  now?: () => number;
  maxEndpointsPerTenant?: number;
};

/** One admin change of a stored endpoint, planned from the record and enabled state it replaces. */
type Modification = {
  after: StoredEndpoint;
  isEnabled?: boolean;
  /** Absent when nothing an admin would see changed. */
  audit?: AdminAuditChange;
};

export class WebhookEndpointStore {
  readonly #redis: Redis | Cluster;
  readonly #prefix: string;
  readonly #box: SecretBox;
  readonly #now: () => number;
  readonly #maxPerTenant: number;
  readonly #audit: AdminAuditLog;

  constructor(options: WebhookEndpointStoreOptions) {
    this.#redis = options.redis;
    this.#prefix = options.prefix;
    this.#box = options.secretBox;
    this.#now = options.now ?? Date.now;
    this.#maxPerTenant = options.maxEndpointsPerTenant ?? 100;
    this.#audit = new AdminAuditLog({ redis: options.redis, prefix: options.prefix, now: this.#now });
  }

  /** Creates an endpoint; the returned `secret` is the only time the secret leaves the store. */
  async create(
    input: NewEndpoint,
    actor: AuditActor,
  ): Promise<{ endpoint: WebhookEndpoint; secret: string }> {
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
    const { tenant, url, eventTypes, description } = stored;
    const changes = { url, eventTypes, description, enabled: input.isEnabled };
    await this.#audit
      .addTo(transaction, actor, { action: 'webhook-endpoint.create', tenant, resourceId: id, changes })
      .exec();
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

  /**
   * Applies the changes (the enabled switch included) in one step, audited as field → {from, to}. A new
   * URL starts with a clean record: the old host's failures and block flag were not its own.
   */
  async update(
    tenant: string,
    id: string,
    changes: EndpointChanges,
    actor: AuditActor,
  ): Promise<WebhookEndpoint | undefined> {
    const { isEnabled, ...fields } = changes;
    const changed = await this.#modify(tenant, id, actor, (before, wasEnabled) => {
      const after = { ...before, ...fields };
      const diff = fieldChanges(adminView(before, wasEnabled), adminView(after, isEnabled ?? wasEnabled));
      const audit = { action: 'webhook-endpoint.update', tenant, resourceId: id, changes: diff } as const;
      return {
        after,
        ...(isEnabled === undefined ? {} : { isEnabled }),
        ...(Object.keys(diff).length === 0 ? {} : { audit }),
      };
    });
    return changed ? this.get(tenant, id) : undefined;
  }

  /** Enabling also forgets the failure streak and block flag, so the window starts afresh. */
  async setEnabled(
    tenant: string,
    id: string,
    isEnabled: boolean,
    actor: AuditActor,
  ): Promise<WebhookEndpoint | undefined> {
    return this.update(tenant, id, { isEnabled }, actor);
  }

  async remove(tenant: string, id: string, actor: AuditActor): Promise<boolean> {
    const endpoint = await this.get(tenant, id);
    if (!endpoint) return false;
    const { url, eventTypes } = endpoint;
    const audited: AdminAuditChange = {
      action: 'webhook-endpoint.delete',
      tenant,
      resourceId: id,
      changes: { url, eventTypes },
    };
    const streams = this.#audit.streams(actor, audited);
    const keys = [this.#recordKey(id), this.#stateKey(id), this.#tenantKey(tenant), ...streams];
    const removed = await this.#redis.eval(
      removeScript,
      keys.length,
      ...keys,
      id,
      this.#audit.entry(actor, audited),
    );
    return removed === 1;
  }

  /**
   * A new current secret. The previous one keeps signing for `overlapMs` (both signatures are sent), so
   * receivers can switch at their own pace; older ones are dropped.
   */
  async rotateSecret(
    tenant: string,
    id: string,
    overlapMs: number,
    actor: AuditActor,
  ): Promise<{ endpoint: WebhookEndpoint; secret: string } | undefined> {
    const secret = generateWebhookSecret();
    const nowMs = this.#now();
    const changed = await this.#modify(tenant, id, actor, (stored) => {
      const current = stored.secrets.find((entry) => entry.expiresAt === null) ?? stored.secrets[0]!;
      const previous =
        overlapMs > 0 ? [{ ...current, expiresAt: new Date(nowMs + overlapMs).toISOString() }] : [];
      const createdAt = new Date(nowMs).toISOString();
      // When each secret signs, never the secrets themselves.
      const changes = {
        overlapSeconds: overlapMs / 1000,
        previousSecretExpiresAt: previous[0]?.expiresAt ?? null,
      };
      return {
        after: {
          ...stored,
          secrets: [{ sealed: this.#box.seal(secret, id), createdAt, expiresAt: null }, ...previous],
        },
        audit: { action: 'webhook-endpoint.rotate-secret', tenant, resourceId: id, changes },
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
    return (await this.#redis.eval(disableOnceScript, 1, this.#stateKey(id), at, reason)) === 1;
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

  /** Reads, plans and compare-and-sets until no concurrent write got in between; false when not found. */
  async #modify(
    tenant: string,
    id: string,
    actor: AuditActor,
    plan: (stored: StoredEndpoint, isEnabled: boolean) => Modification,
  ): Promise<boolean> {
    for (let attempt = 0; attempt < 5; attempt += 1) {
      const results = await this.#redis
        .pipeline()
        .get(this.#recordKey(id))
        .hexists(this.#stateKey(id), 'disabledAt')
        .exec();
      const [[readError, raw] = [], [stateError, isDisabled] = []] = results ?? [];
      if (readError || stateError) throw readError ?? stateError;
      if (typeof raw !== 'string') return false;
      const before = storedEndpointSchema.parse(JSON.parse(raw));
      if (before.tenant !== tenant) return false;
      const read = { raw, before, wasDisabled: isDisabled === 1 };
      if (await this.#compareAndSet(id, read, plan(before, isDisabled !== 1), actor)) return true;
    }
    throw new ClipmodError('conflict', 'the endpoint is being changed concurrently; try again');
  }

  async #compareAndSet(
    id: string,
    { raw, before, wasDisabled }: { raw: string; before: StoredEndpoint; wasDisabled: boolean },
    { after, isEnabled, audit }: Modification,
    actor: AuditActor,
  ): Promise<boolean> {
    const at = new Date(this.#now()).toISOString();
    const streams = audit ? this.#audit.streams(actor, audit) : [];
    const keys = [this.#recordKey(id), this.#stateKey(id), ...streams];
    const swapped = await this.#redis.eval(
      modifyScript,
      keys.length,
      ...keys,
      raw,
      JSON.stringify({ ...after, updatedAt: at }),
      wasDisabled ? '1' : '0',
      isEnabled === undefined ? '' : isEnabled ? '1' : '0',
      after.url === before.url ? '0' : '1',
      at,
      audit ? this.#audit.entry(actor, audit) : '',
    );
    return swapped === 1;
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

/** What an admin sees of an endpoint's configuration, as the update audit compares it. */
function adminView(stored: StoredEndpoint, isEnabled: boolean) {
  const { url, eventTypes, description } = stored;
  return { url, eventTypes, description, enabled: isEnabled };
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
