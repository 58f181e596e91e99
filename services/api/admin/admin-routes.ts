import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import express, { type RequestHandler, type Response, type Router } from 'express';
import { ClipmodError } from '../../../shared/errors/index.ts';

// The policy admin page at /admin: one static HTML page, vanilla JS modules and one stylesheet from
// ./static, no build step and nothing fetched from elsewhere. The page calls the policy API under
// /admin/api: the admin session cookie has Path=/admin, so a browser never sends it to /v1, and the
// same routes are mounted again there, authorized by the session instead of a Bearer key.

export const adminPagePath = '/admin';
export const adminApiPath = '/admin/api';
export const adminAssetsPath = '/admin/assets';

export type AdminPageDeps = {
  /** AdminSession.requireAdmin: a session cookie (or Bearer key) with the admin scope. */
  guard: RequestHandler;
  /** The policy router, built with an empty `authorize` chain: `guard` runs before it and sets the principal. */
  policyApi: Router;
  /** More admin-scope API routers built the same way (bank, search, calibration), mounted beside it. */
  moreApis?: readonly Router[];
};

type Asset = { body: Buffer; contentType: string };

/** No inline script or style, nothing from another origin; blob: shows the image under test. */
export const adminPageCsp = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' blob: data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "require-trusted-types-for 'script'",
].join('; ');

const securityHeaders = {
  'content-security-policy': adminPageCsp,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

const assetTypes: Record<string, string> = {
  'admin.js': 'text/javascript; charset=utf-8',
  'admin-beyond.js': 'text/javascript; charset=utf-8',
  'admin-calibration.js': 'text/javascript; charset=utf-8',
  'admin-history.js': 'text/javascript; charset=utf-8',
  'admin.css': 'text/css; charset=utf-8',
};

export function adminPageRouter(deps: AdminPageDeps): Router {
  const { page, assets, version } = loadStatic();
  const router = express.Router();

  router.get(adminPagePath, deps.guard, (_req, res) => {
    // The page is behind the session and cheap to send: never cached, so signing out leaves no copy.
    res
      .set({ ...securityHeaders, 'cache-control': 'no-store' })
      .type('html')
      .send(page);
  });

  // Public like the source they come from; the version in the path changes whenever a file does, so a
  // browser may keep them for a year and still never run a stale script against a newer API.
  router.get(`${adminAssetsPath}/:version/:file`, (req, res: Response) => {
    const asset = req.params.version === version ? assets.get(String(req.params.file)) : undefined;
    if (asset === undefined) throw new ClipmodError('not_found', `no admin asset ${req.path}`);
    res
      .set({
        ...securityHeaders,
        'content-type': asset.contentType,
        'cache-control': 'public, max-age=31536000, immutable',
      })
      .send(asset.body);
  });

  router.use(adminApiPath, deps.guard, deps.policyApi, ...(deps.moreApis ?? []));
  return router;
}

/** Read once at start: the files are small and fixed for the life of the process. */
function loadStatic(): { page: string; assets: Map<string, Asset>; version: string } {
  const read = (name: string) => readFileSync(new URL(`./static/${name}`, import.meta.url));
  const assets = new Map<string, Asset>();
  const hash = createHash('sha256');
  for (const [name, contentType] of Object.entries(assetTypes)) {
    const body = read(name);
    hash.update(name).update(body);
    assets.set(name, { body, contentType });
  }
  const version = hash.digest('hex').slice(0, 12);
  const page = read('admin.html').toString('utf8').replaceAll('{{assets}}', `${adminAssetsPath}/${version}`);
  return { page, assets, version };
}
