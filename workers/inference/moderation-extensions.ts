import type { ModerationRecord } from '../../shared/moderation/index.ts';
import type { LabelResult } from '../../shared/policy/index.ts';
import {
  type KnownBadBank,
  type RetainedEmbeddings,
  summarizeVerdict,
  type TenantSettingsStore,
} from '../../shared/retention/index.ts';
import type { ImageEmbedding } from './image-embedder.ts';
import { applyBankMatches } from './known-bad-matching.ts';

// The inference processor's two extension points for what clipmod does beyond one verdict: before the
// verdict, known-bad bank matches join the label results; after the completed record is stored, the
// embedding is retained when the tenant opted in. Both read the tenant's settings from Redis per image
// (one GET), so a settings change applies to the next image.

export type ModerationExtensions = {
  adjustResults(
    record: ModerationRecord,
    image: ImageEmbedding,
    results: LabelResult[],
  ): Promise<LabelResult[]>;
  retain(record: ModerationRecord, image: ImageEmbedding): Promise<void>;
};

export type ModerationExtensionsOptions = {
  settings: TenantSettingsStore;
  bank: KnownBadBank;
  retained: RetainedEmbeddings;
  /** The model's id: bank entries and retained vectors name it, so spaces never mix. */
  modelId: string;
  dim: number;
};

export function createModerationExtensions(options: ModerationExtensionsOptions): ModerationExtensions {
  const { settings, bank, retained, modelId, dim } = options;
  return {
    async adjustResults(record, image, results) {
      const entries = await bank.entries(record.tenant, record.policy.id);
      if (entries.length === 0) return results;
      const { maxCosineDistance } = (await settings.get(record.tenant)).bank;
      return applyBankMatches(results, image.embeddings, dim, { entries, modelId, maxCosineDistance });
    },
    async retain(record, image) {
      const { retention } = await settings.get(record.tenant);
      if (!retention.enabled || record.verdict === undefined) return;
      // The first sampled frame stands for an animation: search and re-scoring work on one vector.
      const vector = image.embeddings.slice(0, dim);
      const meta = {
        moderationId: record.id,
        model: modelId,
        summary: summarizeVerdict(record.policy, record.verdict),
        retainedAt: record.completedAt ?? new Date().toISOString(),
      };
      await retained.retain(record.tenant, meta, vector, retention.ttlSeconds);
    },
  };
}
