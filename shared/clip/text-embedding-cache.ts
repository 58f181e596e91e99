// Text embeddings of prompts, cached per (model, text) so a policy's prompts are encoded once and
// shared by every worker. The Redis implementation is the shared one; the LRU serves one process.
import { createHash } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import type { ClipModel } from './clip-model.ts';

export type TextEmbeddingCache = {
  /** One entry per text, in order; `undefined` where nothing is cached. */
  getMany(modelId: string, texts: readonly string[]): Promise<(Float32Array | undefined)[]>;
  setMany(modelId: string, embeddings: ReadonlyMap<string, Float32Array>): Promise<void>;
};

export class InMemoryTextEmbeddingCache implements TextEmbeddingCache {
  // A Map iterates in insertion order, so re-inserting on every hit makes its first key the least recent.
  readonly #entries = new Map<string, Float32Array>();
  readonly #maxEntries: number;

  constructor(options: { maxEntries: number }) {
    if (!Number.isInteger(options.maxEntries) || options.maxEntries < 1) {
      throw new RangeError(`maxEntries must be a positive integer, got ${options.maxEntries}`);
    }
    this.#maxEntries = options.maxEntries;
  }

  get size(): number {
    return this.#entries.size;
  }

  async getMany(modelId: string, texts: readonly string[]): Promise<(Float32Array | undefined)[]> {
    return texts.map((text) => {
      const key = memoryKey(modelId, text);
      const embedding = this.#entries.get(key);
      if (embedding !== undefined) {
        this.#entries.delete(key);
        this.#entries.set(key, embedding);
      }
      return embedding;
    });
  }

  async setMany(modelId: string, embeddings: ReadonlyMap<string, Float32Array>): Promise<void> {
    for (const [text, embedding] of embeddings) {
      const key = memoryKey(modelId, text);
      this.#entries.delete(key);
      this.#entries.set(key, embedding.slice());
    }
    for (const oldest of this.#entries.keys()) {
      if (this.#entries.size <= this.#maxEntries) break;
      this.#entries.delete(oldest);
    }
  }
}

function memoryKey(modelId: string, text: string): string {
  return `${modelId}\u0000${text}`;
}

export type RedisTextEmbeddingCacheOptions = {
  redis: Redis | Cluster;
  /**
   * Prepended to every key. On Redis Cluster it must carry a hash tag (e.g. `{clipmod}:`) because
   * one MGET reads many keys and Cluster answers only for keys in a single slot.
   */
  keyPrefix: string;
  /** Unset: entries live until evicted or deleted (embeddings never go stale for fixed weights). */
  ttlSeconds?: number;
};

/** Values are raw float32 bytes in the host order (little-endian on every platform Node ships for). */
export class RedisTextEmbeddingCache implements TextEmbeddingCache {
  readonly #redis: Redis | Cluster;
  readonly #keyPrefix: string;
  readonly #ttlSeconds: number | undefined;

  constructor(options: RedisTextEmbeddingCacheOptions) {
    this.#redis = options.redis;
    this.#keyPrefix = options.keyPrefix;
    this.#ttlSeconds = options.ttlSeconds;
  }

  /** The Redis key of one entry; texts are hashed so long prompts make short keys. */
  keyFor(modelId: string, text: string): string {
    const digest = createHash('sha256').update(text).digest('hex');
    return `${this.#keyPrefix}text-embedding:${modelId}:${digest}`;
  }

  async getMany(modelId: string, texts: readonly string[]): Promise<(Float32Array | undefined)[]> {
    if (texts.length === 0) return [];
    const values = await this.#redis.mgetBuffer(...texts.map((text) => this.keyFor(modelId, text)));
    return values.map((value) => (value === null ? undefined : bytesToFloats(value)));
  }

  async setMany(modelId: string, embeddings: ReadonlyMap<string, Float32Array>): Promise<void> {
    if (embeddings.size === 0) return;
    const pipeline = this.#redis.pipeline();
    for (const [text, embedding] of embeddings) {
      const key = this.keyFor(modelId, text);
      const bytes = Buffer.from(embedding.buffer, embedding.byteOffset, embedding.byteLength);
      if (this.#ttlSeconds === undefined) pipeline.set(key, bytes);
      else pipeline.set(key, bytes, 'EX', this.#ttlSeconds);
    }
    const results = await pipeline.exec();
    const failure = results?.find(([error]) => error !== null)?.[0];
    if (failure) throw failure;
  }
}

/** A value of the wrong byte length (written by another build) reads as a miss. */
function bytesToFloats(bytes: Buffer): Float32Array | undefined {
  if (bytes.byteLength % Float32Array.BYTES_PER_ELEMENT !== 0) return undefined;
  // Copy: the Buffer may sit at an offset in a pooled ArrayBuffer that Float32Array cannot view.
  return new Float32Array(new Uint8Array(bytes).buffer);
}

export type CachedTextEmbeddings = {
  /** [texts.length, embeddingDim], normalised, in the order of the texts asked for. */
  embeddings: Float32Array;
  /** Distinct texts found in the cache. */
  hits: number;
  /** Distinct texts encoded now (in one batch) and written back. */
  misses: number;
};

export async function embedTextsCached(
  model: Pick<ClipModel, 'modelId' | 'embeddingDim' | 'encodeTexts'>,
  cache: TextEmbeddingCache,
  texts: readonly string[],
): Promise<CachedTextEmbeddings> {
  const dim = model.embeddingDim;
  const distinct = [...new Set(texts)];
  const cached = await cache.getMany(model.modelId, distinct);
  const byText = new Map<string, Float32Array>();
  const missing: string[] = [];
  distinct.forEach((text, index) => {
    const hit = cached[index];
    if (hit !== undefined && hit.length === dim) byText.set(text, hit);
    else missing.push(text);
  });
  if (missing.length > 0) {
    const encoded = await model.encodeTexts(missing);
    const fresh = new Map<string, Float32Array>();
    missing.forEach((text, index) => fresh.set(text, encoded.subarray(index * dim, (index + 1) * dim)));
    await cache.setMany(model.modelId, fresh);
    for (const [text, embedding] of fresh) byText.set(text, embedding);
  }
  const embeddings = new Float32Array(texts.length * dim);
  texts.forEach((text, index) => embeddings.set(byText.get(text)!, index * dim));
  return { embeddings, hits: distinct.length - missing.length, misses: missing.length };
}
