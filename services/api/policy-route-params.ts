import type { Request, RequestHandler } from 'express';
import { ClipmodError } from '../../shared/errors/index.ts';
import { checkPolicyId } from '../../shared/policy/index.ts';
import { principalOf } from './auth/index.ts';

// What every policy route reads from a request — the policy id, version numbers, the caller — and the
// answers they share, so the three policy routers (admin, shadow, dry run) speak alike.

/** Fails closed should the injected chain ever be wired without a scope check. */
export const requireAdmin: RequestHandler = (_req, res, next) => {
  if (!principalOf(res).scopes.includes('admin')) {
    throw new ClipmodError('forbidden', 'policy administration needs the "admin" scope', {
      details: { requiredScope: 'admin' },
    });
  }
  next();
};

export function policyIdOf(req: Request): string {
  const raw: unknown = req.params.id;
  return checkPolicyId(typeof raw === 'string' ? raw : '');
}

/** A version number from a query string, a form field or a JSON member (`path` names it in errors). */
export function parseVersion(raw: unknown, path: string): number {
  const text = typeof raw === 'number' ? String(raw) : raw;
  if (typeof text === 'string' && /^[1-9][0-9]{0,8}$/.test(text)) return Number(text);
  throw new ClipmodError('bad_request', `${path} must be a positive integer`, {
    details: { errors: [{ path, message: 'must be a positive integer' }] },
  });
}

/** `?version=N`, or undefined when absent. */
export function versionQuery(req: Request): number | undefined {
  const raw = req.query.version;
  return raw === undefined ? undefined : parseVersion(raw, 'version');
}

/** `?limit=N` (within [1, maxLimit], default 100) and `?before=CURSOR` of a paged list. */
export function pageQuery(req: Request, maxLimit: number): { limit: number; before?: string } {
  const { limit: rawLimit, before } = req.query;
  const limit = rawLimit === undefined ? 100 : Math.min(parseVersion(rawLimit, 'limit'), maxLimit);
  return typeof before === 'string' ? { limit, before } : { limit };
}

/** A JSON request body (an object), or bad_request naming what to send. */
export function jsonObjectBody(req: Request, what: string): Record<string, unknown> {
  const body: unknown = req.body;
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ClipmodError('bad_request', `send ${what} as a JSON object (Content-Type: application/json)`);
  }
  return body as Record<string, unknown>;
}

export function policyNotFound(id: string, version?: number): ClipmodError {
  const what = version === undefined ? `policy "${id}"` : `version ${version} of policy "${id}"`;
  return new ClipmodError('not_found', `no ${what}`, { details: { id } });
}

/**
 * Validates a draft sent as the `policy` member of a larger body: the same checks as a PUT, with every
 * error path prefixed (`policy.labels[0].threshold`) so it points into what the caller sent.
 */
export function validateDraft<T>(validate: (input: unknown) => T, input: unknown): T {
  try {
    return validate(input);
  } catch (error) {
    if (!(error instanceof ClipmodError) || !Array.isArray(error.details.errors)) throw error;
    const errors = (error.details.errors as { path: string; message: string }[]).map((entry) => ({
      ...entry,
      path: entry.path === '(root)' ? 'policy' : `policy.${entry.path}`,
    }));
    const summary = errors.slice(0, 3).map((entry) => `${entry.path}: ${entry.message}`);
    throw new ClipmodError('bad_request', `invalid draft: ${summary.join('; ')}`, { details: { errors } });
  }
}
