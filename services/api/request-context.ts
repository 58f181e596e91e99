import { randomUUID } from 'node:crypto';
import type { RequestHandler, Response } from 'express';
import type { Logger } from '../../shared/logger/index.ts';
import { requestIdSchema } from '../../shared/queue/index.ts';
import { routePattern } from './http-metrics.ts';

// Every request gets an id — the client's `x-request-id` when it is plain enough to echo, else a new
// UUID — a child logger carrying it, the id in the response, and one access-log line at the end.
// Routes pass the id on (moderation record and job), so worker and webhook logs carry it too.

export const requestIdHeader = 'x-request-id';

/** Probes and scrapes arrive every few seconds: their lines go to debug, not to info. */
const quietPaths = new Set(['/livez', '/readyz', '/metrics']);

export function requestContext(logger: Logger): RequestHandler {
  return (req, res, next) => {
    const offered = req.get(requestIdHeader);
    const requestId =
      offered !== undefined && requestIdSchema.safeParse(offered).success ? offered : randomUUID();
    const log = logger.child({ requestId });
    res.locals.requestId = requestId;
    res.locals.logger = log;
    res.setHeader(requestIdHeader, requestId);
    const startedAt = performance.now();
    res.on('close', () => {
      const line = {
        method: req.method,
        route: routePattern(req),
        status: res.statusCode,
        durationMs: Math.round((performance.now() - startedAt) * 10) / 10,
        ...(res.writableFinished ? {} : { aborted: true }),
        ...(res.locals.logFields as Record<string, unknown> | undefined),
      };
      if (quietPaths.has(req.path)) log.debug(line, 'request');
      else log.info(line, 'request');
    });
    next();
  };
}

/** The id of the request being answered (set by requestContext). */
export function requestIdOf(res: Response): string | undefined {
  const { requestId } = res.locals as { requestId?: unknown };
  return typeof requestId === 'string' ? requestId : undefined;
}

/** Adds fields to the request's closing `request` line, e.g. the moderation id it created. */
export function annotateRequestLog(res: Response, fields: Record<string, unknown>): void {
  res.locals.logFields = { ...(res.locals.logFields as Record<string, unknown> | undefined), ...fields };
}

/** The request's child logger, or `fallback` outside requestContext. */
export function requestLoggerOf(res: Response, fallback: Logger): Logger {
  const { logger } = res.locals as { logger?: Logger };
  return logger ?? fallback;
}
