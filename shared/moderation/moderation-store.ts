import { randomBytes } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import type { ModerationRecord } from './moderation-record.ts';

// Moderation records, submitted image bytes and idempotency keys in Redis, all under the deployment's
// hash-tagged prefix. Records are JSON strings with a TTL; image bytes live only until the job ends.

// KEYS: record, image[, idempotency key]. ARGV: record JSON, image bytes, result TTL, image TTL, id.
const createScript = `
if #KEYS == 3 then
  local earlier = redis.call('SET', KEYS[3], ARGV[5], 'EX', 86400, 'NX', 'GET')
  if earlier then return earlier end
end
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[4])
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
return false
`;

// KEYS: record. ARGV: record JSON, result TTL. A finished record is final: a worker that lost its job's
// lock (partitioned from Redis, or paused past lockDuration) may still write after another worker
// finished the job, and its late write must not turn the result back into `processing` or replace it.
const saveUnlessFinishedScript = `
local stored = redis.call('GET', KEYS[1])
if stored then
  local ok, record = pcall(cjson.decode, stored)
  if ok and (record.status == 'completed' or record.status == 'failed') then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1
`;

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

  /**
   * Stores bytes and record in one step, so a job never finds one without the other. With an
   * Idempotency-Key the key is claimed (24 h) in the same step: when an earlier submission holds it,
   * nothing is stored and its id is returned. One script, so a key never points at a missing record.
   */
  async create(
    record: ModerationRecord,
    image: Buffer,
    idempotency?: { tenant: string; key: string },
  ): Promise<string | undefined> {
    const keys = [this.recordKey(record.id), this.imageKey(record.id)];
    if (idempotency) keys.push(this.#idempotencyKey(idempotency.tenant, idempotency.key));
    const args = [JSON.stringify(record), image, this.#resultTtlSeconds, this.#imageTtlSeconds, record.id];
    const earlier = await this.#redis.eval(createScript, keys.length, ...keys, ...args);
    return typeof earlier === 'string' ? earlier : undefined;
  }

  async putImage(id: string, image: Buffer): Promise<void> {
    await this.#redis.set(this.imageKey(id), image, 'EX', this.#imageTtlSeconds);
  }

  async get(id: string): Promise<ModerationRecord | undefined> {
    const raw = await this.#redis.get(this.recordKey(id));
    return raw === null ? undefined : (JSON.parse(raw) as ModerationRecord);
  }

  /** Stores the record unless the stored one already finished; false when it had (first finish wins). */
  async save(record: ModerationRecord): Promise<boolean> {
    const key = this.recordKey(record.id);
    const json = JSON.stringify(record);
    return (await this.#redis.eval(saveUnlessFinishedScript, 1, key, json, this.#resultTtlSeconds)) === 1;
  }

  async image(id: string): Promise<Buffer | undefined> {
    return (await this.#redis.getBuffer(this.imageKey(id))) ?? undefined;
  }

  async deleteImage(id: string): Promise<void> {
    await this.#redis.del(this.imageKey(id));
  }

  #idempotencyKey(tenant: string, key: string): string {
    return `${this.#prefix}:idempotency:${tenant}:${key}`;
  }
}
