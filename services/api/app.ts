import express, { type Router } from 'express';
import type { Logger } from '../../shared/logger/index.ts';
import type { Registry } from '../../shared/metrics/index.ts';
import type { ReadinessReport } from '../../shared/runtime/index.ts';
import { httpMetrics } from './http-metrics.ts';
import { notFoundHandler, problemHandler } from './problem-handler.ts';
import { requestContext } from './request-context.ts';

export type AppOptions = {
  logger: Logger;
  registry: Registry;
  readiness: () => Promise<ReadinessReport>;
  /** Feature routers mounted under the root, in order (v1 API, OpenAI compatibility, admin). */
  routers?: readonly Router[];
};

/** Builds the express app; main.ts (or `clipmod serve`) listens. */
export function createApp(options: AppOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', false);
  app.use(requestContext(options.logger));
  app.use(httpMetrics(options.registry));

  app.get('/livez', (_req, res) => {
    res.json({ status: 'live' });
  });
  app.get('/readyz', async (_req, res) => {
    const report = await options.readiness();
    res.status(report.status === 'ready' ? 200 : 503).json(report);
  });
  app.get('/metrics', async (_req, res) => {
    res.type(options.registry.contentType).send(await options.registry.metrics());
  });
  for (const router of options.routers ?? []) app.use(router);

  app.use(notFoundHandler);
  app.use(problemHandler(options.logger));
  return app;
}
