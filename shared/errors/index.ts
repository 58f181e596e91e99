// Stable error codes for everything clipmod reports to a caller, and their one mapping to HTTP
// (application/problem+json) and CLI exit codes. Depends on nothing else in the project.

/** Every code a client may see. Codes are part of the API contract: add, never rename. */
export const errorCatalog = {
  bad_request: { status: 400, title: 'Bad request' },
  invalid_config: { status: 500, title: 'Invalid configuration' },
  unsupported_format: { status: 415, title: 'Unsupported image format' },
  corrupt_image: { status: 400, title: 'Corrupt image' },
  image_too_large: { status: 413, title: 'Image too large' },
  empty_image: { status: 400, title: 'Empty image' },
  payload_too_large: { status: 413, title: 'Payload too large' },
  unauthorized: { status: 401, title: 'Unauthorized' },
  forbidden: { status: 403, title: 'Forbidden' },
  not_found: { status: 404, title: 'Not found' },
  conflict: { status: 409, title: 'Conflict' },
  rate_limited: { status: 429, title: 'Too many requests' },
  url_forbidden: { status: 400, title: 'URL not allowed' },
  url_fetch_failed: { status: 400, title: 'URL could not be fetched' },
  model_invalid: { status: 500, title: 'Model folder invalid' },
  model_fetch_failed: { status: 502, title: 'Model download failed' },
  unavailable: { status: 503, title: 'Service unavailable' },
  timeout: { status: 504, title: 'Timed out' },
  internal: { status: 500, title: 'Internal error' },
} as const;

export type ErrorCode = keyof typeof errorCatalog;

export type ClipmodErrorOptions = {
  /** Extra machine-readable fields for the problem document (e.g. `field`, `limit`). */
  details?: Record<string, unknown>;
  /** Seconds a client should wait before retrying (429/503). */
  retryAfterSeconds?: number;
  cause?: unknown;
};

/** An expected failure with a stable code; anything else reaching a boundary is `internal`. */
export class ClipmodError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown>;
  readonly retryAfterSeconds: number | undefined;

  constructor(code: ErrorCode, message: string, options: ClipmodErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ClipmodError';
    this.code = code;
    this.details = options.details ?? {};
    this.retryAfterSeconds = options.retryAfterSeconds;
  }

  get status(): number {
    return errorCatalog[this.code].status;
  }

  /** True for failures caused by the input (retrying the same input cannot succeed). */
  get isClientError(): boolean {
    return this.status >= 400 && this.status < 500;
  }
}

export function isClipmodError(error: unknown): error is ClipmodError {
  return error instanceof ClipmodError;
}

export type ProblemDocument = {
  type: string;
  title: string;
  status: number;
  code: ErrorCode;
  detail: string;
  instance?: string;
  [extra: string]: unknown;
};

/** The one mapping from an error to an RFC 9457 problem document. Unknown errors never leak text. */
export function toProblem(error: unknown, instance?: string): ProblemDocument {
  const known = isClipmodError(error) ? error : new ClipmodError('internal', 'An internal error occurred.');
  const entry = errorCatalog[known.code];
  return {
    ...known.details,
    type: `https://clipmod.dev/problems/${known.code.replaceAll('_', '-')}`,
    title: entry.title,
    status: entry.status,
    code: known.code,
    detail: known.message,
    ...(instance === undefined ? {} : { instance }),
  };
}

/** CLI exit code: 2 for bad usage or bad input, 1 for runtime failures. */
export function exitCodeFor(error: unknown): 1 | 2 {
  if (isClipmodError(error) && (error.isClientError || error.code === 'invalid_config')) return 2;
  return 1;
}
