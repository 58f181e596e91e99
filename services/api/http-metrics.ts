import type { Request, RequestHandler } from 'express';
import { counterFor, histogramFor, metricCatalog, type Registry } from '../../shared/metrics/index.ts';

/** The matched route pattern (never the raw path: ids would explode cardinality), else `unmatched`. */
export function routePattern(req: Request): string {
  return req.route?.path ? `${req.baseUrl}${String(req.route.path)}` : 'unmatched';
}

/** Request count and duration by route pattern. */
export function httpMetrics(registry: Registry): RequestHandler {
  const requests = counterFor(registry, metricCatalog.httpRequests);
  const duration = histogramFor(registry, metricCatalog.httpRequestDuration);
  return (req, res, next) => {
    const startedAt = process.hrtime.bigint();
    res.on('finish', () => {
      const route = routePattern(req);
      const seconds = Number(process.hrtime.bigint() - startedAt) / 1e9;
      requests.inc({ method: req.method, route, status: String(res.statusCode) });
      duration.observe({ method: req.method, route }, seconds);
    });
    next();
  };
}
