import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import { z } from 'zod';
import {
  type AdminAuditChange,
  AdminAuditLog,
  type AuditActor,
  appendAuditLua,
} from '../../../shared/audit/index.ts';
import { redisCall } from './redis-call.ts';

// API keys: random secrets shown once, stored only as SHA-256 digests. Layout under the
// hash-tagged prefix (one Redis Cluster slot, so MULTI works):
//   <prefix>:apikey:<sha256 hex>     JSON record {id, tenant, scopes, name, createdAt}
//   <prefix>:apikey-id:<id>          sha256 hex of that key (deletion by id)
//   <prefix>:apikeys:<tenant>        sorted set of ids, scored by creation time (listing)
// Creation and revocation append to the admin audit log in the same MULTI or script (name, scopes and
// tenant; never the key or its digest).

export const scopes = ['moderate', 'admin'] as const;
export type Scope = (typeof scopes)[number];

/** Who is calling: attached to each authenticated request. */
export type Principal = { tenant: string; keyId: string; scopes: readonly Scope[] };

export const bootstrapKeyId = 'bootstrap';
export const defaultTenant = 'default';

/** Tenants appear inside Redis key names and URLs, so they stay plain. */
export const tenantSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'lowercase letters, digits, "-" or "_", at most 63 characters');

const apiKeyRecordSchema = z.object({
  id: z.string(),
  tenant: z.string(),
  scopes: z.array(z.enum(scopes)),
  name: z.string(),
  createdAt: z.string(),
});
export type ApiKeyRecord = z.infer<typeof apiKeyRecordSchema>;

/** `cm_` + 32 random bytes in base64url (43 characters). */
const keyPattern = /^cm_[A-Za-z0-9_-]{43}$/;

export type ApiKeyStoreOptions = {
  redis: Redis | Cluster;
  /** Hash-tagged prefix such as `{clipmod}`. */
  prefix: string;
  /** CLIPMOD_ADMIN_KEY: both scopes for tenant `default`; undefined disables it. */
  adminKey?: string | undefined;
  now?: () => Date;
};

export type NewApiKey = { tenant: string; name: string; scopes: readonly Scope[] };

/**
 * KEYS: record, id key, tenant index, audit streams…; ARGV: digest, id, audit entry. Deletes only while
 * the id still names that digest, so of two concurrent revocations one wins and one event is written.
 */
const revokeScript = `${appendAuditLua}
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[2])
appendAudit(4, ARGV[3])
return 1`;

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

export class ApiKeyStore {
  readonly #redis: Redis | Cluster;
  readonly #prefix: string;
  readonly #adminKeyDigest: Buffer | undefined;
  readonly #now: () => Date;
  readonly #audit: AdminAuditLog;

  constructor(options: ApiKeyStoreOptions) {
    this.#redis = options.redis;
    this.#prefix = options.prefix;
    this.#adminKeyDigest = options.adminKey ? sha256(options.adminKey) : undefined;
    this.#now = options.now ?? (() => new Date());
    this.#audit = new AdminAuditLog({
      redis: options.redis,
      prefix: options.prefix,
      now: () => this.#now().getTime(),
    });
  }

  /** Makes a key; the returned `key` is the only copy of the secret that will ever exist. */
  async create(input: NewApiKey, actor: AuditActor): Promise<{ record: ApiKeyRecord; key: string }> {
    const key = `cm_${randomBytes(32).toString('base64url')}`;
    const digest = sha256(key).toString('hex');
    const createdAt = this.#now();
    const record: ApiKeyRecord = {
      id: `key_${randomBytes(12).toString('base64url')}`,
      tenant: input.tenant,
      scopes: [...new Set(input.scopes)],
      name: input.name,
      createdAt: createdAt.toISOString(),
    };
    const { id, tenant, name, scopes } = record;
    const audited = {
      action: 'api-key.create',
      tenant,
      resourceId: id,
      changes: { name, scopes, tenant },
    } as const;
    const transaction = this.#redis
      .multi()
      .set(this.#recordKey(digest), JSON.stringify(record))
      .set(this.#idKey(id), digest)
      .zadd(this.#tenantKey(tenant), createdAt.getTime(), id);
    await redisCall('storing an API key', () =>
      this.#audit.addTo(transaction, actor, audited).exec().then(throwFirstFailure),
    );
    return { record, key };
  }

  /** The principal a presented secret stands for, or undefined when it is not a live key. */
  async authenticate(presented: string): Promise<Principal | undefined> {
    if (this.#isAdminKey(presented)) {
      return { tenant: defaultTenant, keyId: bootstrapKeyId, scopes: [...scopes] };
    }
    // Anything that cannot be one of our keys is refused without a Redis round trip.
    if (!keyPattern.test(presented)) return undefined;
    const digest = sha256(presented).toString('hex');
    const stored = await redisCall('looking up an API key', () => this.#redis.get(this.#recordKey(digest)));
    if (stored === null) return undefined;
    const record = parseRecord(stored);
    return { tenant: record.tenant, keyId: record.id, scopes: record.scopes };
  }

  /** Whether the key with this id still authenticates (admin sessions re-check it: revocation ends them). */
  async isLive(id: string): Promise<boolean> {
    if (id === bootstrapKeyId) return this.#adminKeyDigest !== undefined;
    return (await redisCall('looking up an API key', () => this.#redis.exists(this.#idKey(id)))) === 1;
  }

  /** A tenant's keys, oldest first, without secrets. */
  async list(tenant: string): Promise<ApiKeyRecord[]> {
    const stored = await redisCall('listing API keys', async () => {
      const ids = await this.#redis.zrange(this.#tenantKey(tenant), 0, -1);
      if (ids.length === 0) return [];
      const digests = await this.#redis.mget(ids.map((id) => this.#idKey(id)));
      const live = digests.filter((digest): digest is string => digest !== null);
      return live.length === 0 ? [] : this.#redis.mget(live.map((digest) => this.#recordKey(digest)));
    });
    return stored.flatMap((text) => (text === null ? [] : [parseRecord(text)]));
  }

  /** Revokes a key at once. `tenant` restricts deletion to that tenant's keys; false if none matched. */
  async remove(id: string, tenant: string | undefined, actor: AuditActor): Promise<boolean> {
    const digest = await redisCall('finding an API key', () => this.#redis.get(this.#idKey(id)));
    if (digest === null) return false;
    const stored = await redisCall('finding an API key', () => this.#redis.get(this.#recordKey(digest)));
    const record = stored === null ? undefined : parseRecord(stored);
    if (record === undefined || (tenant !== undefined && record.tenant !== tenant)) return false;
    const audited: AdminAuditChange = {
      action: 'api-key.revoke',
      tenant: record.tenant,
      resourceId: id,
      changes: { name: record.name, scopes: record.scopes },
    };
    const streams = this.#audit.streams(actor, audited);
    const removed = await redisCall('deleting an API key', () =>
      this.#redis.eval(
        revokeScript,
        3 + streams.length,
        this.#recordKey(digest),
        this.#idKey(id),
        this.#tenantKey(record.tenant),
        ...streams,
        digest,
        id,
        this.#audit.entry(actor, audited),
      ),
    );
    return removed === 1;
  }

  /** Constant time over equal-length digests, so the comparison leaks neither content nor length. */
  #isAdminKey(presented: string): boolean {
    if (this.#adminKeyDigest === undefined) return false;
    return timingSafeEqual(sha256(presented), this.#adminKeyDigest);
  }

  #recordKey(digest: string): string {
    return `${this.#prefix}:apikey:${digest}`;
  }

  #idKey(id: string): string {
    return `${this.#prefix}:apikey-id:${id}`;
  }

  #tenantKey(tenant: string): string {
    return `${this.#prefix}:apikeys:${tenant}`;
  }
}

function parseRecord(text: string): ApiKeyRecord {
  return apiKeyRecordSchema.parse(JSON.parse(text));
}

/** MULTI reports per-command errors in its result instead of rejecting. */
function throwFirstFailure(results: [Error | null, unknown][] | null): void {
  if (results === null) throw new Error('Redis transaction was aborted');
  const failure = results.find(([error]) => error !== null);
  if (failure?.[0]) throw failure[0];
}
