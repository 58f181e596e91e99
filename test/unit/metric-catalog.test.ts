import { describe, expect, it } from 'vitest';
import {
  counterFor,
  createRegistry,
  type MetricSpec,
  maxPolicyLabelSeries,
  metricCatalog,
  readWithinScrape,
} from '../../shared/metrics/index.ts';
import type { ModerationRecord } from '../../shared/moderation/index.ts';
import { inferenceMetrics } from '../../workers/inference/inference-metrics.ts';
import { parseSamples, sumOf } from '../helpers/prometheus.ts';

const specs = Object.values(metricCatalog) as MetricSpec[];

describe('metric catalog', () => {
  it('follows Prometheus naming: clipmod_ prefix, snake_case, _total on counters only', () => {
    for (const spec of specs) {
      expect(spec.name, spec.name).toMatch(/^clipmod_[a-z0-9_]+[a-z0-9]$/);
      expect(spec.name.endsWith('_total'), spec.name).toBe(spec.type === 'counter');
      expect(spec.help.length, spec.name).toBeGreaterThan(10);
      for (const label of spec.labelNames) expect(label, spec.name).toMatch(/^[a-z][a-z_]*$/);
    }
    expect(new Set(specs.map((spec) => spec.name)).size).toBe(specs.length);
  });

  it('puts durations in seconds and keeps histogram buckets ascending', () => {
    for (const spec of specs.filter((s) => /duration|latency|_ms|millis/.test(s.name))) {
      expect(spec.name, spec.name).toMatch(/_seconds$/);
    }
    for (const spec of specs) {
      if (spec.type !== 'histogram') continue;
      expect(
        [...spec.buckets].sort((a, b) => a - b),
        spec.name,
      ).toEqual(spec.buckets);
    }
  });

  it('returns the same metric to every component that asks for it in one registry', () => {
    const registry = createRegistry('test');
    const first = counterFor(registry, metricCatalog.jobs);
    const second = counterFor(registry, metricCatalog.jobs);
    expect(second).toBe(first);
  });

  it('serves no default metric that promtool rejects (gauges named _total)', async () => {
    const text = await createRegistry('test').metrics();
    const gauges = [...text.matchAll(/^# TYPE (\S+) gauge$/gm)].map((match) => match[1]);
    expect(gauges.filter((name) => name?.endsWith('_total'))).toEqual([]);
    expect(gauges).toContain('clipmod_nodejs_active_handles');
  });

  it('gives up on a collector read that outlasts the scrape budget', async () => {
    const startedAt = performance.now();
    expect(await readWithinScrape(new Promise(() => {}), 50)).toBeUndefined();
    expect(await readWithinScrape(Promise.reject(new Error('Connection is closed')), 50)).toBeUndefined();
    expect(await readWithinScrape(Promise.resolve(7), 50)).toBe(7);
    expect(performance.now() - startedAt).toBeLessThan(1_000);
  });
});

function completed(policyId: string, labelId: string, score: number): ModerationRecord {
  return {
    id: 'mod_12345678',
    tenant: 'default',
    status: 'completed',
    policy: { id: policyId, version: 1 },
    model: 'color',
    metadata: {},
    image: { format: 'png', width: 1, height: 1, frames: 1, sizeBytes: 1 },
    verdict: {
      action: score >= 0.5 ? 'block' : 'allow',
      flagged: score >= 0.5,
      labels: [
        {
          id: labelId,
          score,
          threshold: 0.5,
          triggered: score >= 0.5,
          action: 'block',
          evidence: { prompt: 'p' },
        },
      ],
    },
    timings: { queuedMs: 1, preprocessMs: 1, inferenceMs: 1, totalMs: 250 },
    attempts: 1,
    createdAt: '2030-01-01T00:00:00.000Z',
  };
}

describe('inference metrics', () => {
  it('caps (policy, label) series and counts the rest under _other', async () => {
    const registry = createRegistry('test');
    const metrics = inferenceMetrics(registry, 8);
    for (let i = 0; i < maxPolicyLabelSeries + 5; i += 1)
      metrics.observeModeration(completed(`p${i}`, 'red', 0.9));
    metrics.observeModeration(completed('p0', 'red', 0.1));
    const samples = parseSamples(await registry.metrics());
    const counts = samples.filter((sample) => sample.name === 'clipmod_label_score_count');
    expect(counts).toHaveLength(maxPolicyLabelSeries + 1);
    expect(sumOf(samples, 'clipmod_label_score_count', { policy: '_other', label: '_other' })).toBe(5);
    expect(sumOf(samples, 'clipmod_label_score_count', { policy: 'p0', label: 'red' })).toBe(2);
    expect(sumOf(samples, 'clipmod_verdicts_total', { policy: '_other' })).toBe(5);
    expect(sumOf(samples, 'clipmod_label_triggers_total', { policy: '_other', label: '_other' })).toBe(5);
  });

  it('records batch fill against the configured batch size, and one model info series', async () => {
    const registry = createRegistry('test');
    const metrics = inferenceMetrics(registry, 8);
    metrics.observeBatch(2, 10);
    metrics.observeBatch(8, 10);
    metrics.observeModelStart({ modelId: 'a', variant: 'fp32', provider: 'cuda' }, 1000, 500);
    metrics.observeModelStart({ modelId: 'b', variant: 'fp16', provider: 'cpu' }, 1000, 500);
    const samples = parseSamples(await registry.metrics());
    expect(sumOf(samples, 'clipmod_inference_batch_fill_ratio_sum')).toBeCloseTo(1.25);
    expect(sumOf(samples, 'clipmod_model_load_seconds')).toBe(1);
    const info = samples.filter((sample) => sample.name === 'clipmod_model_info');
    expect(info).toEqual([
      {
        name: 'clipmod_model_info',
        labels: { model: 'b', variant: 'fp16', provider: 'cpu', role: 'test' },
        value: 1,
      },
    ]);
  });
});
