// Compares the metric names and label names of PromQL queries with what the code registers: the
// metric catalog plus prom-client's default process metrics, exactly as createRegistry() serves them.
import { createRegistry, Histogram, registerCatalog } from '../../shared/metrics/index.ts';
import { metricSelectors } from './promql.ts';

/** Labels every scraped series may carry beside its own: our default label and Prometheus' target labels. */
const scrapeLabels = ['role', 'instance', 'job'];
const histogramSuffixes = ['_bucket', '_sum', '_count'];

type Known = { labelNames: string[]; isHistogram: boolean };

function knownMetrics(): Map<string, Known> {
  const registry = createRegistry('catalog-check');
  registerCatalog(registry);
  return new Map(
    registry.getMetricsAsArray().map((metric) => {
      const { name, labelNames } = metric as unknown as { name: string; labelNames: string[] };
      return [name, { labelNames: [...labelNames], isHistogram: metric instanceof Histogram }];
    }),
  );
}

export type CatalogCheck = {
  /** `where: name` for every selector whose metric the code does not define. */
  unknownMetrics: string[];
  /** `where: name{label}` for every matcher label that metric never carries. */
  unknownLabels: string[];
  /** Registered metric names the queries use (histogram series resolved to their histogram). */
  used: Set<string>;
};

export function checkAgainstCatalog(queries: readonly { where: string; expr: string }[]): CatalogCheck {
  const known = knownMetrics();
  const result: CatalogCheck = { unknownMetrics: [], unknownLabels: [], used: new Set() };
  for (const { where, expr } of queries) {
    for (const selector of metricSelectors(expr)) {
      const resolved = resolve(known, selector.name);
      if (!resolved) {
        result.unknownMetrics.push(`${where}: ${selector.name}`);
        continue;
      }
      result.used.add(resolved.name);
      const allowed = new Set([...resolved.known.labelNames, ...scrapeLabels, ...resolved.extraLabels]);
      for (const label of selector.labelNames.filter((name) => !allowed.has(name))) {
        result.unknownLabels.push(`${where}: ${selector.name}{${label}}`);
      }
    }
  }
  return result;
}

export function catalogMetricNames(): string[] {
  return [...knownMetrics().keys()];
}

function resolve(known: Map<string, Known>, name: string) {
  const direct = known.get(name);
  if (direct) return { name, known: direct, extraLabels: [] as string[] };
  for (const suffix of histogramSuffixes.filter((s) => name.endsWith(s))) {
    const base = name.slice(0, -suffix.length);
    const histogram = known.get(base);
    if (histogram?.isHistogram)
      return { name: base, known: histogram, extraLabels: suffix === '_bucket' ? ['le'] : [] };
  }
  return undefined;
}
