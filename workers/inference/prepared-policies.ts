import { type ClipModel, embedTextsCached, type TextEmbeddingCache } from '../../shared/clip/index.ts';
import { ClipmodError } from '../../shared/errors/index.ts';
import type { PolicyDocument } from '../../shared/policy/index.ts';
import { type PreparedPolicy, policyTexts, preparePolicy } from './policy-scoring.ts';

// Policy versions ready to score: their prompt embeddings, read through the (model, text) cache that
// every worker shares in Redis, so a new version costs only the texts no version used before.
// Versions are immutable, so a prepared one never goes stale; the map is only bounded in size. It holds
// promises, so a version prepared ahead (hot reload) and a job that needs it at the same moment share
// one preparation instead of embedding the same new texts twice.

export type PreparedPoliciesOptions = {
  model: Pick<ClipModel, 'modelId' | 'embeddingDim' | 'encodeTexts'>;
  textCache: TextEmbeddingCache;
  loadPolicy(tenant: string, id: string, version: number): Promise<PolicyDocument | undefined>;
  onTextCache?(hits: number, misses: number): void;
  /** Versions kept in memory; the least recently prepared goes first. Default 256. */
  maxEntries?: number;
};

export class PreparedPolicies {
  readonly #options: PreparedPoliciesOptions;
  readonly #entries = new Map<string, Promise<PreparedPolicy>>();

  constructor(options: PreparedPoliciesOptions) {
    this.#options = options;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** A stored version, prepared once; not_found when the version does not exist. */
  get(tenant: string, id: string, version: number): Promise<PreparedPolicy> {
    const key = `${tenant}\u0000${id}\u0000${version}`;
    const entry = this.#entries.get(key);
    if (entry !== undefined) return entry;
    const preparing = this.#load(tenant, id, version);
    this.#entries.set(key, preparing);
    // A failure (Redis away, model error) must not stick: the next job tries again.
    preparing.catch(() => {
      if (this.#entries.get(key) === preparing) this.#entries.delete(key);
    });
    const maxEntries = this.#options.maxEntries ?? 256;
    if (this.#entries.size > maxEntries) this.#entries.delete(this.#entries.keys().next().value!);
    return preparing;
  }

  /** A document that is not stored (a dry-run draft): prepared each time, never kept. */
  async prepare(document: PolicyDocument): Promise<PreparedPolicy> {
    const { model, textCache } = this.#options;
    const { embeddings, hits, misses } = await embedTextsCached(model, textCache, policyTexts(document));
    this.#options.onTextCache?.(hits, misses);
    return preparePolicy(document, embeddings, model.embeddingDim);
  }

  async #load(tenant: string, id: string, version: number): Promise<PreparedPolicy> {
    const document = await this.#options.loadPolicy(tenant, id, version);
    if (!document) throw new ClipmodError('not_found', `policy ${id} version ${version} no longer exists`);
    return this.prepare(document);
  }
}
