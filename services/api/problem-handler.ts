import type { ErrorRequestHandler, RequestHandler } from 'express';
import { ClipmodError, isClipmodError, toProblem } from '../../shared/errors/index.ts';
import type { Logger } from '../../shared/logger/index.ts';
import { requestLoggerOf } from './request-context.ts';

/** The one place where errors become application/problem+json responses. */
export function problemHandler(logger: Logger): ErrorRequestHandler {
  return (error: unknown, req, res, _next) => {
    const known = translateExpressError(error);
    const problem = toProblem(known, req.originalUrl);
    // 503 is the designed answer while Redis is away or full (clients retry): a warning, not an error.
    if (problem.status === 503) {
      requestLoggerOf(res, logger).warn({ err: error, url: req.originalUrl }, 'request refused: unavailable');
    } else if (problem.status >= 500) {
      requestLoggerOf(res, logger).error({ err: error, url: req.originalUrl }, 'request failed');
    }
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (isClipmodError(known) && known.retryAfterSeconds !== undefined) {
      res.setHeader('retry-after', String(Math.ceil(known.retryAfterSeconds)));
    }
    res.status(problem.status).type('application/problem+json').send(JSON.stringify(problem));
  };
}

export const notFoundHandler: RequestHandler = (req, _res, next) => {
  next(new ClipmodError('not_found', `no route for ${req.method} ${req.path}`));
};

/**
 * Redis away (no offline queue on request paths), full (noeviction OOM) or failing over. ioredis's
 * MaxRetriesPerRequestError says "Reached the max retries per request limit": a command in flight when
 * the primary died (RELIABILITY.md Q6 kill -9) ends with it.
 */
const redisUnavailable =
  /Stream isn't writeable|Cluster isn't ready|Connection is closed|Command timed out|ECONNREFUSED|ETIMEDOUT|MaxRetriesPerRequest|max retries per request limit|^(OOM|LOADING|READONLY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|BUSY)\b/;

/** body-parser, ioredis and friends throw their own errors; give them stable codes. */
function translateExpressError(error: unknown): unknown {
  if (isClipmodError(error) || typeof error !== 'object' || error === null) return error;
  if (error instanceof Error && redisUnavailable.test(error.message)) {
    return new ClipmodError('unavailable', 'storage is unavailable; retry shortly', {
      retryAfterSeconds: 1,
      cause: error,
    });
  }
  const { type, status } = error as { type?: string; status?: number };
  if (type === 'entity.too.large') return new ClipmodError('payload_too_large', 'request body too large');
  if (type === 'entity.parse.failed')
    return new ClipmodError('bad_request', 'request body is not valid JSON');
  if (status !== undefined && status >= 400 && status < 500) {
    return new ClipmodError('bad_request', (error as Error).message || 'bad request');
  }
  return error;
}
