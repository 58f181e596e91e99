// Prometheus metrics (prom-client): one registry per process, default process metrics, and the
// metric definitions shared by the roles. Depends on nothing in the project.
import { collectDefaultMetrics, Registry } from 'prom-client';

export { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** A fresh registry with default process metrics, every series labelled with the process role. */
export function createRegistry(role: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ role });
  collectDefaultMetrics({ register: registry, prefix: 'clipmod_' });
  return registry;
}
