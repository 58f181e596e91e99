import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import express, { type Request, type RequestHandler, type Router } from 'express';
import type { Cluster, Redis } from 'ioredis';
import { z } from 'zod';
import { ClipmodError } from '../../shared/errors/index.ts';
import { adminLoginPage } from './admin-login-page.ts';
import { type ApiKeyStore, bearerToken, defaultTenant, type Principal, scopes } from './auth/index.ts';

// Admin pages in a browser. A plain navigation cannot send `Authorization: Bearer`, so an admin key
// is exchanged once (POST /admin/session) for a short-lived cookie: HMAC-signed claims
// {tenant, keyId, scopes, exp}, HttpOnly (no script reads it), SameSite=Strict and Path=/admin (sent
// only by same-site navigations to admin pages). The signing secret lives in Redis, so every API
// replica accepts every session; revoking the key ends its sessions at the next request.

export const adminSessionCookie = 'clipmod_admin_session';
export const adminLoginPath = '/admin/login';
const defaultTtlSeconds = 3_600;
const defaultLandingPath = '/admin';

const claimsSchema = z.object({
  tenant: z.string(),
  keyId: z.string(),
  scopes: z.array(z.enum(scopes)),
  exp: z.number(),
});

export type AdminSessionOptions = {
  store: ApiKeyStore;
  /** HMAC key of session cookies, shared by all API replicas: loadAdminSessionSecret(). */
  secret: Buffer;
  ttlSeconds?: number;
  now?: () => number;
};

export type AdminSession = {
  /** GET /admin/login (form), POST /admin/session (sign in with a key), DELETE /admin/session (sign out). */
  router: Router;
  /** Admin scope by Bearer key or session cookie; browsers without either are sent to the login form. */
  requireAdmin: RequestHandler;
  /** requireAdmin, and the key must belong to tenant `default` (operators of the deployment). */
  requireOperator: RequestHandler;
  /** The cookie value for a principal, valid for ttlSeconds. */
  issue(principal: Principal): string;
  /** The principal a cookie value stands for: signature, expiry and key liveness checked. */
  verify(value: string): Promise<Principal | undefined>;
};

/** The signing secret under the deployment prefix, created by whichever replica comes first. */
export async function loadAdminSessionSecret(redis: Redis | Cluster, prefix: string): Promise<Buffer> {
  const key = `${prefix}:admin-session-secret`;
  await redis.set(key, randomBytes(32).toString('base64'), 'NX');
  const stored = await redis.get(key);
  if (stored === null) throw new ClipmodError('unavailable', 'admin session secret vanished from Redis');
  return Buffer.from(stored, 'base64');
}

export function createAdminSession(options: AdminSessionOptions): AdminSession {
  const ttlSeconds = options.ttlSeconds ?? defaultTtlSeconds;
  const now = options.now ?? Date.now;
  const sign = (body: string) => createHmac('sha256', options.secret).update(body).digest();

  const issue = (principal: Principal) => {
    const claims = { ...principal, exp: Math.floor(now() / 1000) + ttlSeconds };
    const body = Buffer.from(JSON.stringify(claims)).toString('base64url');
    return `${body}.${sign(body).toString('base64url')}`;
  };

  const verify = async (value: string): Promise<Principal | undefined> => {
    const [body, mac, ...rest] = value.split('.');
    if (!body || !mac || rest.length > 0) return undefined;
    const given = Buffer.from(mac, 'base64url');
    const expected = sign(body);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    const claims = claimsSchema.safeParse(JSON.parse(Buffer.from(body, 'base64url').toString('utf8')));
    if (!claims.success || claims.data.exp * 1000 <= now()) return undefined;
    if (!(await options.store.isLive(claims.data.keyId))) return undefined;
    return { tenant: claims.data.tenant, keyId: claims.data.keyId, scopes: claims.data.scopes };
  };

  const requireAdmin = adminGuard(options.store, verify, { isOperatorOnly: false });
  const requireOperator = adminGuard(options.store, verify, { isOperatorOnly: true });
  return {
    router: sessionRouter(options.store, issue, ttlSeconds),
    requireAdmin,
    requireOperator,
    issue,
    verify,
  };
}

function sessionRouter(
  store: ApiKeyStore,
  issue: (principal: Principal) => string,
  ttlSeconds: number,
): Router {
  const router = express.Router();
  router.get(adminLoginPath, (req, res) => {
    res
      .set({
        'content-security-policy':
          "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        'cache-control': 'no-store',
      })
      .type('html')
      .send(adminLoginPage(safeNext(req.query.next), ttlSeconds));
  });
  const bodies = [express.urlencoded({ extended: false, limit: '4kb' }), express.json({ limit: '4kb' })];
  router.post('/admin/session', ...bodies, async (req, res) => {
    // A cross-site form could otherwise sign a victim's browser in with the attacker's key.
    if (!isSameOrigin(req)) throw new ClipmodError('forbidden', 'cross-origin sign-in refused');
    const body = (req.body ?? {}) as Record<string, unknown>;
    const presented = bearerOrField(req, body.key);
    const principal = presented === undefined ? undefined : await store.authenticate(presented);
    if (principal === undefined) throw new ClipmodError('unauthorized', 'unknown or revoked API key');
    if (!principal.scopes.includes('admin'))
      throw new ClipmodError('forbidden', 'this API key lacks the "admin" scope');
    res.setHeader('set-cookie', sessionCookie(issue(principal), ttlSeconds, isHttps(req)));
    if (req.is('application/x-www-form-urlencoded')) res.redirect(303, safeNext(body.next));
    else res.json({ tenant: principal.tenant, scopes: principal.scopes, expiresInSeconds: ttlSeconds });
  });
  router.delete('/admin/session', (req, res) => {
    res
      .setHeader('set-cookie', sessionCookie('', 0, isHttps(req)))
      .status(204)
      .end();
  });
  return router;
}

/** Bearer when an Authorization header is present (API clients), else the session cookie. */
function adminGuard(
  store: ApiKeyStore,
  verify: AdminSession['verify'],
  { isOperatorOnly }: { isOperatorOnly: boolean },
): RequestHandler {
  return async (req, res, next) => {
    const header = req.get('authorization');
    const token = header === undefined ? undefined : bearerToken(header);
    const cookie = readCookie(req.get('cookie'), adminSessionCookie);
    let principal: Principal | undefined;
    if (header !== undefined) principal = token === undefined ? undefined : await store.authenticate(token);
    else if (cookie !== undefined) principal = await verify(cookie);
    if (principal === undefined) {
      if (header === undefined && req.method === 'GET' && req.accepts(['json', 'html']) === 'html') {
        return res.redirect(303, `${adminLoginPath}?next=${encodeURIComponent(req.originalUrl)}`);
      }
      if (header !== undefined)
        res.setHeader('www-authenticate', 'Bearer realm="clipmod", error="invalid_token"');
      throw new ClipmodError(
        'unauthorized',
        `sign in at ${adminLoginPath} or send Authorization: Bearer KEY`,
      );
    }
    if (header === undefined && !isSafeMethod(req.method) && !isSameOrigin(req))
      throw new ClipmodError('forbidden', 'cross-origin request refused');
    if (!principal.scopes.includes('admin'))
      throw new ClipmodError('forbidden', 'this API key lacks the "admin" scope');
    if (isOperatorOnly && principal.tenant !== defaultTenant)
      throw new ClipmodError('forbidden', 'only admins of tenant "default" operate the deployment');
    res.locals.principal = principal;
    next();
  };
}

function sessionCookie(value: string, maxAgeSeconds: number, isSecure: boolean): string {
  const attributes = [`Path=/admin`, `Max-Age=${maxAgeSeconds}`, 'HttpOnly', 'SameSite=Strict'];
  if (isSecure) attributes.push('Secure');
  return [`${adminSessionCookie}=${value}`, ...attributes].join('; ');
}

/**
 * HTTPS as the client saw it. `x-forwarded-proto` is trusted only to *add* the Secure attribute: a
 * forged header costs the forger nothing but a cookie their plain-HTTP browser will not send back.
 */
function isHttps(req: Request): boolean {
  return req.secure || req.get('x-forwarded-proto') === 'https';
}

/** SameSite=Strict already stops cross-site requests; this also stops sibling origins on the same site. */
function isSameOrigin(req: Request): boolean {
  const origin = req.get('origin');
  if (origin === undefined) return true;
  return URL.canParse(origin) && new URL(origin).host === req.get('host');
}

const isSafeMethod = (method: string) => method === 'GET' || method === 'HEAD' || method === 'OPTIONS';

function bearerOrField(req: Request, field: unknown): string | undefined {
  const token = bearerToken(req.get('authorization'));
  if (token !== undefined) return token;
  return typeof field === 'string' && field.length > 0 ? field : undefined;
}

function readCookie(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const separator = part.indexOf('=');
    if (separator > 0 && part.slice(0, separator).trim() === name) return part.slice(separator + 1).trim();
  }
  return undefined;
}

/** Only same-origin admin paths: a login link must not redirect anywhere else (open redirect). */
function safeNext(value: unknown): string {
  if (typeof value !== 'string') return defaultLandingPath;
  const isAdminPath = /^\/admin(?:[/?#][^\s"'<>\\]*)?$/.test(value) && !value.includes('//');
  return isAdminPath ? value : defaultLandingPath;
}
