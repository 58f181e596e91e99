import type { RequestHandler } from 'express';
import { Counter, Histogram, type Registry } from '../../shared/metrics/index.ts';

/** Request count and duration by route pattern (never the raw path: ids would explode cardinality). */
export function httpMetrics(registry: Registry): RequestHandler {
  const requests = new Counter({
    name: 'clipmod_http_requests_total',
    help: 'HTTP requests answered, by method, route and status code.',
    labelNames: ['method', 'route', 'status'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'clipmod_http_request_duration_seconds',
    help: 'HTTP request duration from arrival to the last byte sent.',
    labelNames: ['method', 'route'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  return (req, res, next) => {
    const startedAt = process.hrtime.bigint();
    res.on('finish', () => {
      const route = req.route?.path ? `${req.baseUrl}${String(req.route.path)}` : 'unmatched';
      const seconds = Number(process.hrtime.bigint() - startedAt) / 1e9;
      requests.inc({ method: req.method, route, status: String(res.statusCode) });
      duration.observe({ method: req.method, route }, seconds);
    });
    next();
  };
}
