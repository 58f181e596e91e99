import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import {
  type CounterSpec,
  type GaugeSpec,
  type HistogramSpec,
  type MetricSpec,
  metricCatalog,
} from './metric-catalog.ts';

// Catalog entries → prom-client metrics. Get-or-create: in `clipmod serve` (all roles) several
// components share one registry and may ask for the same metric; they must get the same instance.

type LabelsOf<S extends MetricSpec> = S['labelNames'][number];

/** prom-client calls this before each scrape; gauges read live state (queue counts, Redis) here. */
export type CollectFunction = (this: Gauge) => void | Promise<void>;

export function counterFor<S extends CounterSpec>(registry: Registry, spec: S): Counter<LabelsOf<S>> {
  const existing = registry.getSingleMetric(spec.name);
  if (existing) return existing as Counter<LabelsOf<S>>;
  return new Counter({ ...describe(spec), registers: [registry] });
}

export function gaugeFor<S extends GaugeSpec>(
  registry: Registry,
  spec: S,
  collect?: CollectFunction,
): Gauge<LabelsOf<S>> {
  const existing = registry.getSingleMetric(spec.name);
  if (existing) return existing as Gauge<LabelsOf<S>>;
  return new Gauge({ ...describe(spec), registers: [registry], ...(collect ? { collect } : {}) });
}

export function histogramFor<S extends HistogramSpec>(registry: Registry, spec: S): Histogram<LabelsOf<S>> {
  const existing = registry.getSingleMetric(spec.name);
  if (existing) return existing as Histogram<LabelsOf<S>>;
  return new Histogram({ ...describe(spec), buckets: [...spec.buckets], registers: [registry] });
}

/** Registers every catalog metric (without collectors): what dashboards and alerts may refer to. */
export function registerCatalog(registry: Registry): void {
  for (const spec of Object.values(metricCatalog) as MetricSpec[]) {
    if (spec.type === 'counter') counterFor(registry, spec);
    else if (spec.type === 'gauge') gaugeFor(registry, spec);
    else histogramFor(registry, spec);
  }
}

/**
 * For collectors that read Redis: the value, or undefined when it fails or takes longer than
 * timeoutMs, so a scrape while Redis is away leaves the series out instead of hanging.
 */
export async function readWithinScrape<T>(pending: Promise<T>, timeoutMs = 2_000): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), timeoutMs);
  });
  try {
    return await Promise.race([pending.catch(() => undefined), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function describe<S extends MetricSpec>(spec: S) {
  return { name: spec.name, help: spec.help, labelNames: [...spec.labelNames] as LabelsOf<S>[] };
}
