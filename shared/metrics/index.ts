// Prometheus metrics (prom-client): one registry per process, default process metrics, and the
// catalog of every metric the roles define (metric-catalog.ts). Depends on nothing in the project.
import { collectDefaultMetrics, Registry } from 'prom-client';

export { Counter, Gauge, Histogram, Registry } from 'prom-client';
export {
  type CollectFunction,
  counterFor,
  gaugeFor,
  histogramFor,
  readWithinScrape,
  registerCatalog,
} from './catalog-metrics.ts';
export {
  type CounterSpec,
  type GaugeSpec,
  type HistogramSpec,
  type MetricCatalog,
  type MetricSpec,
  maxPolicyLabelSeries,
  metricCatalog,
  otherSeriesLabel,
} from './metric-catalog.ts';

/**
 * prom-client gauges that end in `_total`, which `promtool check metrics` rejects (only counters may);
 * each is the sum of its per-type twin without the suffix (e.g. clipmod_nodejs_active_handles).
 */
const misnamedDefaultMetrics = [
  'clipmod_nodejs_active_handles_total',
  'clipmod_nodejs_active_requests_total',
  'clipmod_nodejs_active_resources_total',
];

/** A fresh registry with default process metrics, every series labelled with the process role. */
export function createRegistry(role: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ role });
  collectDefaultMetrics({ register: registry, prefix: 'clipmod_' });
  for (const name of misnamedDefaultMetrics) registry.removeSingleMetric(name);
  return registry;
}
