import { randomBytes } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import type { ModerationRecord } from './moderation-record.ts';

// Moderation records, submitted image bytes and idempotency keys in Redis, all under the deployment's
// hash-tagged prefix. Records are JSON strings with a TTL; image bytes live only until the job ends.

export type ModerationStoreOptions = {
  redis: Redis | Cluster;
  prefix: string;
  resultTtlSeconds: number;
  imageTtlSeconds: number;
};

export function newRequestId(): string {
  return randomBytes(12).toString('base64url');
}

export class ModerationStore {
  readonly #redis: Redis | Cluster;
  readonly #prefix: string;
  readonly #resultTtlSeconds: number;
  readonly #imageTtlSeconds: number;

  constructor(options: ModerationStoreOptions) {
    this.#redis = options.redis;
    this.#prefix = options.prefix;
    this.#resultTtlSeconds = options.resultTtlSeconds;
    this.#imageTtlSeconds = options.imageTtlSeconds;
  }

  recordKey(id: string): string {
    return `${this.#prefix}:moderation:${id}`;
  }

  imageKey(id: string): string {
    return `${this.#prefix}:image:${id}`;
  }

  /** Stores bytes and record in one transaction, so a job never finds one without the other. */
  async create(record: ModerationRecord, image: Buffer): Promise<void> {
    await this.#redis
      .multi()
      .set(this.imageKey(record.id), image, 'EX', this.#imageTtlSeconds)
      .set(this.recordKey(record.id), JSON.stringify(record), 'EX', this.#resultTtlSeconds)
      .exec();
  }

  async putImage(id: string, image: Buffer): Promise<void> {
    await this.#redis.set(this.imageKey(id), image, 'EX', this.#imageTtlSeconds);
  }

  async get(id: string): Promise<ModerationRecord | undefined> {
    const raw = await this.#redis.get(this.recordKey(id));
    return raw === null ? undefined : (JSON.parse(raw) as ModerationRecord);
  }

  async save(record: ModerationRecord): Promise<void> {
    await this.#redis.set(this.recordKey(record.id), JSON.stringify(record), 'EX', this.#resultTtlSeconds);
  }

  async image(id: string): Promise<Buffer | undefined> {
    return (await this.#redis.getBuffer(this.imageKey(id))) ?? undefined;
  }

  async deleteImage(id: string): Promise<void> {
    await this.#redis.del(this.imageKey(id));
  }

  /**
   * Claims an Idempotency-Key for 24 h. Returns the id that owns the key: `candidateId` when this call
   * claimed it, else the id of the earlier submission.
   */
  async claimIdempotencyKey(
    tenant: string,
    key: string,
    candidateId: string,
  ): Promise<{ id: string; isNew: boolean }> {
    const redisKey = `${this.#prefix}:idempotency:${tenant}:${key}`;
    const previous = await this.#redis.set(redisKey, candidateId, 'EX', 86_400, 'NX', 'GET');
    return previous === null ? { id: candidateId, isNew: true } : { id: previous, isNew: false };
  }
}
