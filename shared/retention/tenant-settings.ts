import type { Cluster, Redis } from 'ioredis';
import { z } from 'zod';
import { ClipmodError } from '../errors/index.ts';

// Per-tenant settings of the features built on retained embeddings. Retention is opt-in: nothing of a
// tenant's images is kept until an admin enables it, and then only the embedding, for ttlSeconds.

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

export class TenantSettingsStore {
  readonly #redis: Redis | Cluster;
  readonly #prefix: string;

  constructor(options: { redis: Redis | Cluster; prefix: string }) {
    this.#redis = options.redis;
    this.#prefix = options.prefix;
  }

  async get(tenant: string): Promise<TenantSettings> {
    const raw = await this.#redis.get(this.#key(tenant));
    return parseTenantSettings(raw === null ? {} : JSON.parse(raw));
  }

  /** Replaces the tenant's settings with `input` (validated; omitted groups take their defaults). */
  async put(tenant: string, input: unknown): Promise<TenantSettings> {
    const settings = parseTenantSettings(input);
    await this.#redis.set(this.#key(tenant), JSON.stringify(settings));
    return settings;
  }

  #key(tenant: string): string {
    return `${this.#prefix}:tenant-settings:${tenant}`;
  }
}
