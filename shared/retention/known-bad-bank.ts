import { randomBytes } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import { ClipmodError } from '../errors/index.ts';

// The known-bad bank: example images an admin has filed under one label of one policy, kept as their
// normalised embeddings (the image itself is never stored). One hash per (tenant, policy): entry id →
// JSON with the vector in base64. A bank is small (hundreds of entries), so it is read whole.

export type BankEntry = {
  id: string;
  policyId: string;
  label: string;
  model: string;
  note?: string;
  createdAt: string;
  embedding: Float32Array;
};

/** What the API shows: everything but the vector. */
export type BankEntryView = Omit<BankEntry, 'embedding'> & { dim: number };

/** Per policy; enough for a real bank of known material, small enough to read on every job. */
export const maxBankEntriesPerPolicy = 1_000;

type StoredEntry = Omit<BankEntry, 'embedding'> & { embedding: string };

export class KnownBadBank {
  readonly #redis: Redis | Cluster;
  readonly #prefix: string;

  constructor(options: { redis: Redis | Cluster; prefix: string }) {
    this.#redis = options.redis;
    this.#prefix = options.prefix;
  }

  async add(tenant: string, entry: Omit<BankEntry, 'id' | 'createdAt'>): Promise<BankEntryView> {
    const key = this.#key(tenant, entry.policyId);
    if ((await this.#redis.hlen(key)) >= maxBankEntriesPerPolicy) {
      throw new ClipmodError(
        'conflict',
        `the bank of policy ${entry.policyId} is full (${maxBankEntriesPerPolicy})`,
      );
    }
    const full: BankEntry = {
      ...entry,
      id: `bank_${randomBytes(9).toString('base64url')}`,
      createdAt: new Date().toISOString(),
    };
    const { embedding, ...rest } = full;
    const stored: StoredEntry = {
      ...rest,
      embedding: Buffer.from(embedding.buffer, embedding.byteOffset, embedding.byteLength).toString('base64'),
    };
    await this.#redis.hset(key, full.id, JSON.stringify(stored));
    return viewOf(full);
  }

  /** Every entry of the policy's bank, vectors included (scoring). */
  async entries(tenant: string, policyId: string): Promise<BankEntry[]> {
    const raw = await this.#redis.hvals(this.#key(tenant, policyId));
    return raw
      .map((text) => {
        const stored = JSON.parse(text) as StoredEntry;
        const bytes = Buffer.from(stored.embedding, 'base64');
        return { ...stored, embedding: new Float32Array(new Uint8Array(bytes).buffer) };
      })
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  async list(tenant: string, policyId: string, label?: string): Promise<BankEntryView[]> {
    const entries = await this.entries(tenant, policyId);
    return entries.filter((entry) => label === undefined || entry.label === label).map(viewOf);
  }

  /** True when the entry existed. */
  async remove(tenant: string, policyId: string, entryId: string): Promise<boolean> {
    return (await this.#redis.hdel(this.#key(tenant, policyId), entryId)) === 1;
  }

  #key(tenant: string, policyId: string): string {
    return `${this.#prefix}:bank:${tenant}:${policyId}`;
  }
}

function viewOf(entry: BankEntry): BankEntryView {
  const { embedding, ...rest } = entry;
  return { ...rest, dim: embedding.length };
}
