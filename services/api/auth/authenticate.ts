import type { RequestHandler, Response } from 'express';
import { ClipmodError } from '../../../shared/errors/index.ts';
import type { ApiKeyStore, Principal, Scope } from './api-key-store.ts';

// Bearer-key authentication (RFC 6750 challenges) and scope checks. Handlers behind these read the
// caller through principalOf(res) and never parse the header themselves.

const challenge = 'Bearer realm="clipmod"';

/** The token of an `Authorization: Bearer KEY` header, or undefined when absent or malformed. */
export function bearerToken(header: string | undefined): string | undefined {
  const match = /^Bearer[ \t]+([^\s]+)[ \t]*$/i.exec(header ?? '');
  return match?.[1];
}

/** 401 for a missing or unknown key; sets `res.locals.principal` otherwise. */
export function authenticate(store: ApiKeyStore): RequestHandler {
  return async (req, res, next) => {
    const token = bearerToken(req.get('authorization'));
    if (token === undefined) {
      res.setHeader('www-authenticate', challenge);
      throw new ClipmodError('unauthorized', 'missing API key: send Authorization: Bearer KEY');
    }
    const principal = await store.authenticate(token);
    if (principal === undefined) {
      res.setHeader('www-authenticate', `${challenge}, error="invalid_token"`);
      throw new ClipmodError('unauthorized', 'unknown or revoked API key');
    }
    res.locals.principal = principal;
    next();
  };
}

/** 403 unless the authenticated key carries `scope`; mount after authenticate(). */
export function requireScope(scope: Scope): RequestHandler {
  return (_req, res, next) => {
    if (!principalOf(res).scopes.includes(scope)) {
      res.setHeader('www-authenticate', `${challenge}, error="insufficient_scope", scope="${scope}"`);
      throw new ClipmodError('forbidden', `this API key lacks the "${scope}" scope`, {
        details: { requiredScope: scope },
      });
    }
    next();
  };
}

/** The caller of an authenticated request. Fails closed (401) on a route mounted without authenticate(). */
export function principalOf(res: Response): Principal {
  const principal: unknown = res.locals.principal;
  if (typeof principal !== 'object' || principal === null) {
    throw new ClipmodError('unauthorized', 'request is not authenticated');
  }
  return principal as Principal;
}
