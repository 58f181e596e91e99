import type { Cluster, Redis } from 'ioredis';
import { readAuditStream } from '../audit/index.ts';
import { ClipmodError } from '../errors/index.ts';
import type { PolicyAuditAction, PolicyAuditEvent, PolicyAuditPage } from './policy-audit.ts';
import { changeJson, policyChangedChannel } from './policy-change-channel.ts';
import { diffPolicies, type PolicyChange } from './policy-diff.ts';
import { type PolicyDocument, policyIdPattern } from './policy-schema.ts';
import {
  clearShadowScript,
  deleteScript,
  getScript,
  putScript,
  setShadowScript,
} from './policy-store-scripts.ts';

// Versioned policies in Redis. Per tenant and policy id, one hash `<prefix>:policy:<tenant>:<id>`
// holds every version ever written (`v:<n>`, immutable), the version counter (`seq`, never reset, so a
// re-created policy cannot reuse a number an old verdict points at), the live version (`live`, absent
// once deleted) and the shadow candidate (`shadow`). A list keeps per-version summaries (with the diff)
// so reading history never loads every document; a set indexes the live ids of a tenant; two streams
// (tenant-wide and per policy) are the append-only audit log. Each key kind has its own namespace before
// the tenant, and ids never contain ':', so no tenant name can reach another tenant's keys. Writes run
// as Lua scripts (policy-store-scripts.ts). Keys share the prefix's hash tag, hence one Cluster slot.

/** put: a PUT; rollback: a copy of an older version; candidate: written for shadow mode, never live. */
export type PolicyVersionKind = 'put' | 'rollback' | 'candidate';

export type PolicyVersionSummary = {
  version: number;
  createdAt: string;
  /** The API key id (or `cli:…`) that wrote it. */
  author: string;
  kind: PolicyVersionKind;
  /** The version that was live when this one was written, which `diff` compares against; null if none. */
  basedOn: number | null;
  rollbackOf?: number;
  diff: PolicyChange[];
};

export type StoredPolicy = PolicyVersionSummary & {
  id: string;
  document: PolicyDocument;
  /** Only on the live version: the candidate running beside it in shadow mode. */
  shadowVersion?: number;
};

export type PolicySummary = Pick<StoredPolicy, 'id' | 'version' | 'createdAt' | 'author'>;

export type PolicyHistory = {
  id: string;
  /** Undefined once the policy is deleted; its versions stay readable for audit. */
  liveVersion: number | undefined;
  shadowVersion: number | undefined;
  versions: PolicyVersionSummary[];
};

export type PolicyPutResult = { policy: StoredPolicy; isCreated: boolean };

export type PolicyStoreOptions = {
  redis: Redis | Cluster;
  /** Hash-tagged deployment prefix without a trailing colon, e.g. `{clipmod}`. */
  prefix: string;
  now?: () => Date;
};

export type PolicyWriteOptions = { kind?: PolicyVersionKind; rollbackOf?: number };

/** Concurrent writers each retry after losing a race; more than this many in a row is not plausible. */
const maxWriteAttempts = 64;

type StoredRecord = Omit<StoredPolicy, 'id' | 'version' | 'shadowVersion'>;

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

  /** The tenant's audit stream, or one policy's. */
  auditKey(tenant: string, id?: string): string {
    if (id === undefined) return `${this.#prefix}:policy-audit:${checkTenant(tenant)}`;
    return `${this.#prefix}:policy-audit-by-id:${checkTenant(tenant)}:${checkPolicyId(id)}`;
  }

  /**
   * Writes `document` as the next version (1, 2, …) and makes it live (a `candidate` stays beside the
   * live one). Concurrent writes always get distinct numbers, each diffed against the version it replaced.
   */
  async put(
    tenant: string,
    id: string,
    document: PolicyDocument,
    author: string,
    options: PolicyWriteOptions = {},
  ): Promise<PolicyPutResult> {
    const kind = options.kind ?? 'put';
    for (let attempt = 0; attempt < maxWriteAttempts; attempt += 1) {
      const base = await this.get(tenant, id);
      const summary: Omit<PolicyVersionSummary, 'version'> = {
        createdAt: this.#now().toISOString(),
        author,
        kind,
        basedOn: base?.version ?? null,
        ...(options.rollbackOf === undefined ? {} : { rollbackOf: options.rollbackOf }),
        diff: diffPolicies(base?.document, document),
      };
      const written = await this.#tryPut(tenant, id, { ...summary, document }, base?.version);
      if (written !== undefined) {
        const policy: StoredPolicy = { id, version: written.version, document, ...summary };
        return { policy, isCreated: written.isCreated };
      }
    }
    throw new ClipmodError('conflict', `policy "${id}" is being changed by many writers at once; retry`, {
      retryAfterSeconds: 1,
    });
  }

  async #tryPut(tenant: string, id: string, record: StoredRecord, base: number | undefined) {
    const { document: _document, ...summary } = record;
    const event = record.kind;
    const reply = (await this.#redis.eval(
      putScript,
      5,
      this.policyKey(tenant, id),
      this.historyKey(tenant, id),
      this.indexKey(tenant),
      this.auditKey(tenant),
      this.auditKey(tenant, id),
      JSON.stringify(record),
      JSON.stringify(summary),
      base === undefined ? '' : String(base),
      event === 'candidate' ? '0' : '1',
      this.#auditEntry(id, summary.author, event, {
        basedOn: summary.basedOn,
        ...(summary.rollbackOf === undefined ? {} : { rollbackOf: summary.rollbackOf }),
        diff: summary.diff,
      }),
      policyChangedChannel(this.#prefix),
      changeJson(tenant, id, event),
      id,
    )) as [number, number];
    const [version, isCreated] = reply;
    return version === 0 ? undefined : { version, isCreated: isCreated === 1 };
  }

  /** Writes a copy of `version` as the new live version; undefined when that version does not exist. */
  async rollback(tenant: string, id: string, version: number, author: string) {
    const target = await this.get(tenant, id, version);
    if (target === undefined) return undefined;
    return this.put(tenant, id, target.document, author, { kind: 'rollback', rollbackOf: version });
  }

  /** The live version (with its shadow), or the given one (also of a deleted policy); undefined if absent. */
  async get(tenant: string, id: string, version?: number): Promise<StoredPolicy | undefined> {
    const reply = (await this.#redis.eval(getScript, 1, this.policyKey(tenant, id), version ?? '')) as
      | [number, string, string]
      | null;
    if (reply === null) return undefined;
    const [found, raw, shadow] = reply;
    const record = withDefaults(JSON.parse(raw) as StoredRecord);
    return { id, version: found, ...record, ...(shadow === '' ? {} : { shadowVersion: Number(shadow) }) };
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
    const [[live, shadow], entries] = await Promise.all([
      this.#redis.hmget(this.policyKey(tenant, id), 'live', 'shadow'),
      this.#redis.lrange(this.historyKey(tenant, id), 0, -1),
    ]);
    if (entries.length === 0) return undefined;
    const versions = entries.map((entry) => withDefaults(JSON.parse(entry) as PolicyVersionSummary));
    const numberOrUndefined = (value: string | null | undefined) => (value ? Number(value) : undefined);
    return { id, liveVersion: numberOrUndefined(live), shadowVersion: numberOrUndefined(shadow), versions };
  }

  /** Hides the policy from get/list and stops its shadow; returns the version that was live, if any. */
  async delete(tenant: string, id: string, author: string): Promise<number | undefined> {
    const reply = (await this.#redis.eval(
      deleteScript,
      4,
      this.policyKey(tenant, id),
      this.indexKey(tenant),
      this.auditKey(tenant),
      this.auditKey(tenant, id),
      id,
      this.#auditEntry(id, author, 'delete'),
      policyChangedChannel(this.#prefix),
      changeJson(tenant, id, 'delete'),
    )) as number | null;
    return reply ?? undefined;
  }

  /**
   * Runs `version` in shadow mode beside the live one. Returns the previous shadow version (undefined if
   * none); throws not_found when the policy is not live or the version does not exist.
   */
  async setShadow(tenant: string, id: string, version: number, author: string): Promise<number | undefined> {
    const reply = (await this.#redis.eval(
      setShadowScript,
      3,
      this.policyKey(tenant, id),
      this.auditKey(tenant),
      this.auditKey(tenant, id),
      String(version),
      this.#auditEntry(id, author, 'shadow-set'),
      policyChangedChannel(this.#prefix),
      changeJson(tenant, id, 'shadow-set'),
    )) as number;
    if (reply === -1)
      throw new ClipmodError('not_found', `no live policy "${id}" to shadow`, { details: { id } });
    if (reply === -2)
      throw new ClipmodError('not_found', `no version ${version} of policy "${id}"`, {
        details: { id, version },
      });
    return reply === 0 ? undefined : reply;
  }

  /** Stops shadow mode; returns the version that was shadowed, undefined when none was. */
  async clearShadow(tenant: string, id: string, author: string): Promise<number | undefined> {
    const reply = (await this.#redis.eval(
      clearShadowScript,
      3,
      this.policyKey(tenant, id),
      this.auditKey(tenant),
      this.auditKey(tenant, id),
      this.#auditEntry(id, author, 'shadow-clear'),
      policyChangedChannel(this.#prefix),
      changeJson(tenant, id, 'shadow-clear'),
    )) as number | null;
    return reply ?? undefined;
  }

  /** The audit log, newest first: the tenant's, or one policy's (`policyId`). */
  async audit(
    tenant: string,
    options: { policyId?: string; limit: number; before?: string },
  ): Promise<PolicyAuditPage> {
    return readAuditStream<PolicyAuditEvent>(this.#redis, this.auditKey(tenant, options.policyId), options);
  }

  /** One audit event; the script adds the version. `changes` carries basedOn, rollbackOf and the diff. */
  #auditEntry(id: string, actor: string, action: PolicyAuditAction, changes: object = {}): string {
    return JSON.stringify({ at: this.#now().toISOString(), actor, action, policy: id, ...changes });
  }
}

type ChangeFields = Pick<PolicyVersionSummary, 'kind' | 'basedOn' | 'diff'>;

/** Records written before versions carried their change read as plain puts without a diff. */
function withDefaults<T extends Partial<ChangeFields>>(record: T): T & ChangeFields {
  return { kind: 'put', basedOn: null, diff: [], ...record } as T & ChangeFields;
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
