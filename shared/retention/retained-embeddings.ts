import type { Cluster, Redis } from 'ioredis';
import type { VerdictSummary } from './verdict-summary.ts';

// Retained embeddings of one tenant: normalised float32 vectors (never the image) keyed by moderation
// id, with the verdict summary and time beside them. Three keys per tenant under the deployment's
// hash-tagged prefix (so they stay in one Cluster slot): a hash of vectors, a hash of JSON metadata,
// and a sorted set of expiry times. Hash fields cannot carry their own TTL on every Redis we support,
// so expired entries are pruned on each write and before each scan.

export type RetainedMeta = {
  moderationId: string;
  model: string;
  summary: VerdictSummary;
  retainedAt: string;
};

export type RetainedChunk = { ids: string[]; vectors: Float32Array[] };

/** Expired entries dropped per prune call; a backlog larger than this drains over several calls. */
const pruneBatch = 1_000;

export class RetainedEmbeddings {
  readonly #redis: Redis | Cluster;
  readonly #prefix: string;
  readonly #now: () => number;

  constructor(options: { redis: Redis | Cluster; prefix: string; now?: () => number }) {
    this.#redis = options.redis;
    this.#prefix = options.prefix;
    this.#now = options.now ?? Date.now;
  }

  async retain(tenant: string, meta: RetainedMeta, vector: Float32Array, ttlSeconds: number): Promise<void> {
    const keys = this.#keys(tenant);
    const bytes = Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength);
    await this.#redis
      .multi()
      .hset(keys.vectors, meta.moderationId, bytes)
      .hset(keys.meta, meta.moderationId, JSON.stringify(meta))
      .zadd(keys.expiry, this.#now() + ttlSeconds * 1_000, meta.moderationId)
      .exec();
    await this.prune(tenant);
  }

  /** Drops expired entries; returns how many went. */
  async prune(tenant: string): Promise<number> {
    const keys = this.#keys(tenant);
    const expired = await this.#redis.zrangebyscore(keys.expiry, '-inf', this.#now(), 'LIMIT', 0, pruneBatch);
    if (expired.length === 0) return 0;
    await this.#redis
      .multi()
      .hdel(keys.vectors, ...expired)
      .hdel(keys.meta, ...expired)
      .zrem(keys.expiry, ...expired)
      .exec();
    return expired.length;
  }

  async count(tenant: string): Promise<number> {
    return this.#redis.hlen(this.#keys(tenant).vectors);
  }

  async meta(tenant: string, ids: readonly string[]): Promise<(RetainedMeta | undefined)[]> {
    if (ids.length === 0) return [];
    const raw = await this.#redis.hmget(this.#keys(tenant).meta, ...ids);
    return raw.map((text) => (text === null ? undefined : (JSON.parse(text) as RetainedMeta)));
  }

  async updateSummary(tenant: string, meta: RetainedMeta, summary: VerdictSummary): Promise<void> {
    await this.#redis.hset(this.#keys(tenant).meta, meta.moderationId, JSON.stringify({ ...meta, summary }));
  }

  /**
   * Calls `onChunk` with the tenant's vectors, chunk by chunk (HSCAN), so a caller can search or
   * re-score without holding every vector and id at once. Entries written during the scan may be missed.
   */
  async scan(tenant: string, onChunk: (chunk: RetainedChunk) => Promise<void> | void, chunkSize = 2_000) {
    await this.prune(tenant);
    const key = this.#keys(tenant).vectors;
    let cursor = '0';
    do {
      const [next, flat] = await this.#redis.hscanBuffer(key, cursor, 'COUNT', chunkSize);
      cursor = next.toString();
      const chunk: RetainedChunk = { ids: [], vectors: [] };
      for (let index = 0; index + 1 < flat.length; index += 2) {
        const bytes = flat[index + 1]!;
        chunk.ids.push(flat[index]!.toString());
        // Copy out: the Buffer may sit at an offset that is not a multiple of 4.
        chunk.vectors.push(new Float32Array(new Uint8Array(bytes).buffer));
      }
      if (chunk.ids.length > 0) await onChunk(chunk);
    } while (cursor !== '0');
  }

  #keys(tenant: string) {
    const base = `${this.#prefix}:retained:${tenant}`;
    return { vectors: `${base}:vectors`, meta: `${base}:meta`, expiry: `${base}:expiry` };
  }
}
