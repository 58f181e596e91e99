import type { Cluster, Redis } from 'ioredis';
import { z } from 'zod';
import { AdminAuditLog, type AuditActor, appendAuditLua, fieldChanges } from '../audit/index.ts';
import { ClipmodError } from '../errors/index.ts';

// Per-tenant settings of the features built on retained embeddings. Retention is opt-in: nothing of a
// tenant's images is kept until an admin enables it, and then only the embedding, for ttlSeconds.
// Every change is compare-and-set together with its admin audit event (field → {from, to}), so the
// event says exactly what it replaced even when two admins save at once.

export const tenantSettingsSchema = z.strictObject({
  retention: z
    .strictObject({
      enabled: z.boolean(),
      /** How long an embedding is kept after its moderation; one day to one year. */
      ttlSeconds: z.number().int().min(60).max(31_536_000),
    })
    .default({ enabled: false, ttlSeconds: 2_592_000 }),
  bank: z
    .strictObject({
      /** An image this close (1 − cosine) to a bank entry triggers the entry's label. */
      maxCosineDistance: z.number().min(0).max(1),
    })
    .default({ maxCosineDistance: 0.1 }),
});

export type TenantSettings = z.infer<typeof tenantSettingsSchema>;

export function parseTenantSettings(input: unknown): TenantSettings {
  const parsed = tenantSettingsSchema.safeParse(input ?? {});
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const field = issue?.path.join('.') ?? '';
  throw new ClipmodError('bad_request', `tenant settings: ${field ? `${field}: ` : ''}${issue?.message}`, {
    details: { field },
  });
}

/** KEYS: settings, audit streams…; ARGV: settings as read ('' when unset), new settings, audit entry or ''. */
const replaceScript = `${appendAuditLua}
if (redis.call('GET', KEYS[1]) or '') ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
if ARGV[3] ~= '' then appendAudit(2, ARGV[3]) end
return 1`;

/** Concurrent saves each retry after losing a race; more than this many in a row is not plausible. */
const maxWriteAttempts = 16;

export class TenantSettingsStore {
  readonly #redis: Redis | Cluster;
  readonly #prefix: string;
  readonly #audit: AdminAuditLog;

  constructor(options: { redis: Redis | Cluster; prefix: string; now?: () => number }) {
    this.#redis = options.redis;
    this.#prefix = options.prefix;
    this.#audit = new AdminAuditLog(options);
  }

  async get(tenant: string): Promise<TenantSettings> {
    const raw = await this.#redis.get(this.#key(tenant));
    return parseTenantSettings(raw === null ? {} : JSON.parse(raw));
  }

  /** Replaces the tenant's settings with `input` (validated; omitted groups take their defaults). */
  async put(tenant: string, input: unknown, actor: AuditActor): Promise<TenantSettings> {
    const settings = parseTenantSettings(input);
    for (let attempt = 0; attempt < maxWriteAttempts; attempt += 1) {
      const raw = (await this.#redis.get(this.#key(tenant))) ?? '';
      const changes = fieldChanges(parseTenantSettings(raw === '' ? {} : JSON.parse(raw)), settings);
      const audited = { action: 'tenant-settings.update', tenant, resourceId: tenant, changes } as const;
      // Saving what is already there changes nothing, so it records nothing.
      const streams = Object.keys(changes).length === 0 ? [] : this.#audit.streams(actor, audited);
      const entry = streams.length === 0 ? '' : this.#audit.entry(actor, audited);
      const keys = [this.#key(tenant), ...streams];
      const swapped = await this.#redis.eval(
        replaceScript,
        keys.length,
        ...keys,
        raw,
        JSON.stringify(settings),
        entry,
      );
      if (swapped === 1) return settings;
    }
    throw new ClipmodError('conflict', 'tenant settings are being changed by many writers at once; retry', {
      retryAfterSeconds: 1,
    });
  }

  #key(tenant: string): string {
    return `${this.#prefix}:tenant-settings:${tenant}`;
  }
}
