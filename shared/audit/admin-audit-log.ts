import type { ChainableCommander, Cluster, Redis } from 'ioredis';
import { ClipmodError } from '../errors/index.ts';
import { type AuditPage, readAuditStream } from './audit-stream.ts';

// The admin audit log: one stream per tenant, `<prefix>:admin-audit:<tenant>`, of changes to API keys,
// webhook endpoints and tenant settings (policies keep streams of their own, see shared/policy). Stores
// append in the same MULTI or Lua script as the change itself (addTo, streams + entry + appendAuditLua),
// so a change and its event exist together or not at all; what is not one Redis step (a replay) is
// appended right after it succeeded. Never trimmed. Events never hold a secret or a digest of one.

/** Every action is `<resource>.<verb>`, so `?resource=` filters by prefix. */
const verbsByResource = {
  'api-key': ['create', 'revoke'],
  'webhook-endpoint': ['create', 'update', 'delete', 'rotate-secret', 'replay'],
  'webhook-delivery': ['replay'],
  'tenant-settings': ['update'],
} as const;

export type AdminAuditResource = keyof typeof verbsByResource;
export type AdminAuditAction = {
  [R in AdminAuditResource]: `${R}.${(typeof verbsByResource)[R][number]}`;
}[AdminAuditResource];
export const adminAuditResources = Object.keys(verbsByResource) as AdminAuditResource[];

/** Who acts: an API key id (or `cli:…`) and its tenant; an authenticated Principal fits. */
export type AuditActor = { keyId: string; tenant: string };

export type AdminAuditChange = {
  action: AdminAuditAction;
  /** The tenant whose resource changed. */
  tenant: string;
  /** The API key, endpoint or delivery id; the tenant itself for its settings. */
  resourceId: string;
  /** Updates: field → {from, to}. Otherwise the values that describe the resource. */
  changes: Record<string, unknown>;
};

export type AdminAuditEvent = AdminAuditChange & {
  /** The stream entry id: unique, ordered, and the cursor for the next page. */
  id: string;
  at: string;
  actor: string;
};

export type FieldChange = { from: unknown; to: unknown };

/**
 * Free text (a key's name, an endpoint's description) could carry a pasted secret into a log nobody can
 * delete from: anything shaped like one of ours is replaced before it is written.
 */
const secretShapes = /whsec_[A-Za-z0-9+/=]+|cm_[A-Za-z0-9_-]{43}/g;

/**
 * For scripts whose KEYS end with the audit streams (`streams()`): `appendAudit(first, entry)` adds the
 * entry to KEYS[first] and every key after it.
 */
export const appendAuditLua = `
local function appendAudit(first, entry)
  for i = first, #KEYS do redis.call('XADD', KEYS[i], '*', 'event', entry) end
end
`;

export type AdminAuditLogOptions = {
  redis: Redis | Cluster;
  /** Hash-tagged deployment prefix without a trailing colon, e.g. `{clipmod}`. */
  prefix: string;
  now?: () => number;
};

export class AdminAuditLog {
  readonly #redis: Redis | Cluster;
  /** `<prefix>:admin-audit:`, the tenant follows. */
  readonly #keyStart: string;
  readonly #now: () => number;

  constructor({ redis, prefix, now }: AdminAuditLogOptions) {
    this.#redis = redis;
    this.#keyStart = `${prefix}:admin-audit:`;
    this.#now = now ?? Date.now;
  }

  key(tenant: string): string {
    // Tenants come from authentication, never from a request body; an empty one is a wiring bug.
    if (tenant.length === 0) throw new ClipmodError('internal', 'admin audit log used without a tenant');
    return `${this.#keyStart}${tenant}`;
  }

  /** The changed tenant's stream, and the actor's own as well when an operator acts for another tenant. */
  streams(actor: AuditActor, change: AdminAuditChange): string[] {
    const tenants = actor.tenant === change.tenant ? [change.tenant] : [change.tenant, actor.tenant];
    return tenants.map((tenant) => this.key(tenant));
  }

  /** The stream entry's JSON (the stream id is added on reading). */
  entry(actor: AuditActor, change: AdminAuditChange): string {
    const event = { at: new Date(this.#now()).toISOString(), actor: actor.keyId, ...change };
    return JSON.stringify(event).replace(secretShapes, '[redacted]');
  }

  /** Queues the event on a MULTI that the caller executes together with its change. */
  addTo(transaction: ChainableCommander, actor: AuditActor, change: AdminAuditChange): ChainableCommander {
    const entry = this.entry(actor, change);
    for (const key of this.streams(actor, change)) transaction.xadd(key, '*', 'event', entry);
    return transaction;
  }

  /** For a change that is not one Redis step: called right after it succeeded. */
  async append(actor: AuditActor, change: AdminAuditChange): Promise<void> {
    const results = await this.addTo(this.#redis.multi(), actor, change).exec();
    const failure = results?.find(([error]) => error !== null)?.[0];
    if (failure) throw failure;
  }

  /** The tenant's log, newest first; `resource` keeps one kind (`api-key` → `api-key.*`). */
  async read(
    tenant: string,
    options: { limit: number; before?: string | undefined; resource?: AdminAuditResource | undefined },
  ): Promise<AuditPage<AdminAuditEvent>> {
    const { resource } = options;
    return readAuditStream<AdminAuditEvent>(this.#redis, this.key(tenant), {
      limit: options.limit,
      before: options.before,
      matches: resource === undefined ? undefined : (event) => event.action.startsWith(`${resource}.`),
    });
  }
}

/**
 * field → {from, to} for every leaf whose value differs (nested objects give dotted paths, arrays
 * compare whole); empty when nothing changed.
 */
export function fieldChanges(before: object, after: object, path = ''): Record<string, FieldChange> {
  const from = before as Record<string, unknown>;
  const to = after as Record<string, unknown>;
  const changes: Record<string, FieldChange> = {};
  for (const field of new Set([...Object.keys(from), ...Object.keys(to)])) {
    const at = path === '' ? field : `${path}.${field}`;
    const [old, now] = [from[field], to[field]];
    if (isPlainObject(old) && isPlainObject(now)) Object.assign(changes, fieldChanges(old, now, at));
    else if (JSON.stringify(old) !== JSON.stringify(now))
      changes[at] = { from: old ?? null, to: now ?? null };
  }
  return changes;
}

function isPlainObject(value: unknown): value is object {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
