import type { ClipModel } from '../../shared/clip/index.ts';
import {
  counterFor,
  gaugeFor,
  histogramFor,
  maxPolicyLabelSeries,
  metricCatalog,
  otherSeriesLabel,
  type Registry,
} from '../../shared/metrics/index.ts';
import type { ModerationRecord } from '../../shared/moderation/index.ts';

// The inference worker's metrics (definitions live in the shared catalog): model start-up, batches,
// preprocessing, the text-embedding cache, and what each finished moderation decided.

export type InferenceMetrics = {
  observeModelStart(
    model: Pick<ClipModel, 'modelId' | 'variant' | 'provider'>,
    loadMs: number,
    warmupMs: number,
  ): void;
  observeBatch(size: number, durationMs: number): void;
  observePreprocess(durationMs: number): void;
  observeTextCache(hits: number, misses: number): void;
  /** A moderation reached a terminal state: its latency, verdict action and every label's score. */
  observeModeration(record: ModerationRecord): void;
};

export function inferenceMetrics(registry: Registry, maxBatchSize: number): InferenceMetrics {
  const batchSize = histogramFor(registry, metricCatalog.batchSize);
  const batchFill = histogramFor(registry, metricCatalog.batchFillRatio);
  const batchDuration = histogramFor(registry, metricCatalog.batchDuration);
  const preprocess = histogramFor(registry, metricCatalog.preprocessDuration);
  const textCache = counterFor(registry, metricCatalog.textEmbeddingCache);
  const verdicts = verdictMetrics(registry);
  const moderationDuration = histogramFor(registry, metricCatalog.moderationDuration);
  return {
    observeModelStart(model, loadMs, warmupMs) {
      gaugeFor(registry, metricCatalog.modelLoad).set(loadMs / 1000);
      gaugeFor(registry, metricCatalog.modelWarmup).set(warmupMs / 1000);
      const info = gaugeFor(registry, metricCatalog.modelInfo);
      info.reset();
      info.set({ model: model.modelId, variant: model.variant, provider: model.provider }, 1);
    },
    observeBatch(size, durationMs) {
      batchSize.observe(size);
      batchFill.observe(Math.min(1, size / maxBatchSize));
      batchDuration.observe(durationMs / 1000);
    },
    observePreprocess: (durationMs) => preprocess.observe(durationMs / 1000),
    observeTextCache(hits, misses) {
      textCache.inc({ result: 'hit' }, hits);
      textCache.inc({ result: 'miss' }, misses);
    },
    observeModeration(record) {
      const totalMs = record.timings?.totalMs ?? elapsedMs(record);
      if (totalMs !== undefined) moderationDuration.observe({ status: record.status }, totalMs / 1000);
      verdicts.observe(record);
    },
  };
}

/** Verdict mix and per-label score histograms, with (policy, label) series capped per process. */
function verdictMetrics(registry: Registry) {
  const verdicts = counterFor(registry, metricCatalog.verdicts);
  const triggers = counterFor(registry, metricCatalog.labelTriggers);
  const scores = histogramFor(registry, metricCatalog.labelScore);
  const admitPolicy = seriesBudget(maxPolicyLabelSeries);
  const admitLabel = seriesBudget(maxPolicyLabelSeries);
  return {
    observe(record: ModerationRecord) {
      if (record.status !== 'completed' || !record.verdict) return;
      const policy = admitPolicy(record.policy.id) ? record.policy.id : otherSeriesLabel;
      verdicts.inc({ policy, action: record.verdict.action });
      for (const label of record.verdict.labels) {
        const isAdmitted = admitLabel(`${record.policy.id}\u0000${label.id}`);
        const series = isAdmitted
          ? { policy: record.policy.id, label: label.id }
          : { policy: otherSeriesLabel, label: otherSeriesLabel };
        scores.observe(series, label.score);
        if (label.triggered) triggers.inc({ ...series, action: label.action });
      }
    },
  };
}

/** True for keys already seen, or new ones while fewer than `max` have been seen. */
function seriesBudget(max: number): (key: string) => boolean {
  const seen = new Set<string>();
  return (key) => {
    if (seen.has(key)) return true;
    if (seen.size >= max) return false;
    seen.add(key);
    return true;
  };
}

function elapsedMs(record: ModerationRecord): number | undefined {
  if (!record.completedAt) return undefined;
  return Date.parse(record.completedAt) - Date.parse(record.createdAt);
}
