import type { ErrorRequestHandler, RequestHandler } from 'express';
import { ClipmodError, isClipmodError, toProblem } from '../../shared/errors/index.ts';
import type { Logger } from '../../shared/logger/index.ts';

/** The one place where errors become application/problem+json responses. */
export function problemHandler(logger: Logger): ErrorRequestHandler {
  return (error: unknown, req, res, _next) => {
    const known = translateExpressError(error);
    const problem = toProblem(known, req.originalUrl);
    if (problem.status >= 500) logger.error({ err: error, url: req.originalUrl }, 'request failed');
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

/** body-parser and friends throw http-errors with `type`/`status`; give them stable codes. */
function translateExpressError(error: unknown): unknown {
  if (isClipmodError(error) || typeof error !== 'object' || error === null) return error;
  const { type, status } = error as { type?: string; status?: number };
  if (type === 'entity.too.large') return new ClipmodError('payload_too_large', 'request body too large');
  if (type === 'entity.parse.failed')
    return new ClipmodError('bad_request', 'request body is not valid JSON');
  if (status !== undefined && status >= 400 && status < 500) {
    return new ClipmodError('bad_request', (error as Error).message || 'bad request');
  }
  return error;
}
