import type { Cluster, Redis } from 'ioredis';
import { ClipmodError } from '../errors/index.ts';
import { type PolicyDocument, policyIdPattern } from './policy-schema.ts';

// Versioned policies in Redis. Per tenant and policy id, one hash `<prefix>:policy:<tenant>:<id>`
// holds every version ever written (`v:<n>`, immutable), the version counter (`seq`, never reset, so a
// re-created policy cannot reuse a number an old verdict points at) and the live version (`live`,
// absent once deleted). A list keeps small per-version summaries so reading history never loads every
// document, and a set indexes the live ids of a tenant. Each key kind has its own namespace before the
// tenant and ids never contain ':', so no tenant name can reach another tenant's keys. Writes run as
// Lua scripts: numbering, index and change message are one atomic step. Keys share the prefix's hash
// tag, hence one Redis Cluster slot.

export type StoredPolicy = {
  id: string;
  version: number;
  document: PolicyDocument;
  createdAt: string;
  author: string;
};

export type PolicySummary = Omit<StoredPolicy, 'document'>;

export type PolicyVersionSummary = Omit<PolicySummary, 'id'>;

export type PolicyHistory = {
  id: string;
  /** Undefined once the policy is deleted; its versions stay readable for audit. */
  liveVersion: number | undefined;
  versions: PolicyVersionSummary[];
};

export type PolicyPutResult = { policy: StoredPolicy; isCreated: boolean };

/** Published on `policyChangedChannel(prefix)` after every put and delete, for hot reload. */
export type PolicyChangeMessage = { tenant: string; id: string; version: number; deleted: boolean };

export type PolicyStoreOptions = {
  redis: Redis | Cluster;
  /** Hash-tagged deployment prefix without a trailing colon, e.g. `{clipmod}`. */
  prefix: string;
  now?: () => Date;
};

export function policyChangedChannel(prefix: string): string {
  return `${prefix}:policy-changed`;
}

/** Parses a message from the change channel; undefined for anything that is not one. */
export function parsePolicyChangeMessage(text: string): PolicyChangeMessage | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const { tenant, id, version, deleted } = value as Record<string, unknown>;
  if (typeof tenant !== 'string' || typeof id !== 'string' || !Number.isInteger(version)) return undefined;
  return { tenant, id, version: version as number, deleted: deleted === true };
}

// KEYS: policy hash, history list, tenant index. ARGV: record JSON, createdAt, author, channel, tenant, id.
const putScript = `
local previous = redis.call('HGET', KEYS[1], 'live')
local version = redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.call('HSET', KEYS[1], 'v:' .. version, ARGV[1], 'live', version)
redis.call('RPUSH', KEYS[2], cjson.encode({version = version, createdAt = ARGV[2], author = ARGV[3]}))
redis.call('SADD', KEYS[3], ARGV[6])
redis.call('PUBLISH', ARGV[4], cjson.encode({tenant = ARGV[5], id = ARGV[6], version = version, deleted = false}))
if previous then return {version, 0} end
return {version, 1}
`;

// KEYS: policy hash, tenant index. ARGV: channel, tenant, id.
const deleteScript = `
local live = redis.call('HGET', KEYS[1], 'live')
if not live then return false end
redis.call('HDEL', KEYS[1], 'live')
redis.call('SREM', KEYS[2], ARGV[3])
redis.call('PUBLISH', ARGV[1], cjson.encode({tenant = ARGV[2], id = ARGV[3], version = tonumber(live), deleted = true}))
return tonumber(live)
`;

// KEYS: policy hash. ARGV: version, or '' for the live one. One round trip, and never a torn read.
const getScript = `
local version = ARGV[1]
if version == '' then
  version = redis.call('HGET', KEYS[1], 'live')
  if not version then return false end
end
local record = redis.call('HGET', KEYS[1], 'v:' .. version)
if not record then return false end
return {tonumber(version), record}
`;

type StoredRecord = { document: PolicyDocument; createdAt: string; author: string };

export class PolicyStore {
  readonly #redis: Redis | Cluster;
  readonly #prefix: string;
  readonly #now: () => Date;

  constructor(options: PolicyStoreOptions) {
    this.#redis = options.redis;
    this.#prefix = options.prefix;
    this.#now = options.now ?? (() => new Date());
  }

  policyKey(tenant: string, id: string): string {
    return `${this.#prefix}:policy:${checkTenant(tenant)}:${checkPolicyId(id)}`;
  }

  historyKey(tenant: string, id: string): string {
    return `${this.#prefix}:policy-history:${checkTenant(tenant)}:${checkPolicyId(id)}`;
  }

  indexKey(tenant: string): string {
    return `${this.#prefix}:policy-index:${checkTenant(tenant)}`;
  }

  /** Writes `document` as the next version (1, 2, …); concurrent puts always get distinct numbers. */
  async put(tenant: string, id: string, document: PolicyDocument, author: string): Promise<PolicyPutResult> {
    const key = this.policyKey(tenant, id);
    const createdAt = this.#now().toISOString();
    const record: StoredRecord = { document, createdAt, author };
    const reply = (await this.#redis.eval(
      putScript,
      3,
      key,
      this.historyKey(tenant, id),
      this.indexKey(tenant),
      JSON.stringify(record),
      createdAt,
      author,
      policyChangedChannel(this.#prefix),
      tenant,
      id,
    )) as [number, number];
    const [version, isCreated] = reply;
    return { policy: { id, version, document, createdAt, author }, isCreated: isCreated === 1 };
  }

  /** The live version, or the given one (also of a deleted policy, for audit); undefined if absent. */
  async get(tenant: string, id: string, version?: number): Promise<StoredPolicy | undefined> {
    const reply = (await this.#redis.eval(getScript, 1, this.policyKey(tenant, id), version ?? '')) as
      | [number, string]
      | null;
    if (reply === null) return undefined;
    const [found, raw] = reply;
    const record = JSON.parse(raw) as StoredRecord;
    return { id, version: found, ...record };
  }

  /** Live policies of a tenant, sorted by id, latest version of each. */
  async list(tenant: string): Promise<PolicySummary[]> {
    const ids = (await this.#redis.smembers(this.indexKey(tenant))).sort();
    const policies = await Promise.all(ids.map((id) => this.get(tenant, id)));
    // A policy deleted between the two reads is simply left out.
    return policies
      .filter((policy) => policy !== undefined)
      .map(({ id, version, createdAt, author }) => ({ id, version, createdAt, author }));
  }

  /** Every version ever written, oldest first; undefined when the id was never used. */
  async versions(tenant: string, id: string): Promise<PolicyHistory | undefined> {
    const key = this.policyKey(tenant, id);
    const [live, entries] = await Promise.all([
      this.#redis.hget(key, 'live'),
      this.#redis.lrange(this.historyKey(tenant, id), 0, -1),
    ]);
    if (entries.length === 0) return undefined;
    const versions = entries.map((entry) => JSON.parse(entry) as PolicyVersionSummary);
    return { id, liveVersion: live === null ? undefined : Number(live), versions };
  }

  /** Hides the policy from get/list; returns the version that was live, undefined if none was. */
  async delete(tenant: string, id: string): Promise<number | undefined> {
    const reply = (await this.#redis.eval(
      deleteScript,
      2,
      this.policyKey(tenant, id),
      this.indexKey(tenant),
      policyChangedChannel(this.#prefix),
      tenant,
      id,
    )) as number | null;
    return reply ?? undefined;
  }
}

export function checkPolicyId(id: string): string {
  if (!policyIdPattern.test(id)) {
    throw new ClipmodError('bad_request', `policy id "${id}" must match ${policyIdPattern.source}`, {
      details: { errors: [{ path: 'id', message: `must match ${policyIdPattern.source}` }] },
    });
  }
  return id;
}

function checkTenant(tenant: string): string {
  // Tenants come from authentication, never from a request body; an empty one is a wiring bug.
  if (tenant.length === 0) throw new ClipmodError('internal', 'policy store called without a tenant');
  return tenant;
}
