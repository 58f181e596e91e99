import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { builtModel } from '../helpers/models.ts';
import { type ServiceHarness, startService } from '../helpers/service-harness.ts';
import { type Receiver, startReceiver } from '../helpers/webhook-receiver.ts';
import { type RouteEntry, routeTable } from './route-table.ts';
import {
  colorPolicy,
  createTenantResources,
  imageForm,
  jsonInit,
  type TenantResources,
} from './tenant-fixtures.ts';

// RELIABILITY A1/A2: every route of the running service (read from the express router stack, so a
// new route is covered the day it is added) × {no key, bad keys, moderate-only key, admin key of
// another tenant, the owner's admin key}. A route missing from `access` fails the first test: whoever
// adds a route decides who may call it here.

type Access = 'public' | 'model' | 'admin' | 'operator';

const access: Record<string, Access> = {
  'GET /livez': 'public',
  'GET /readyz': 'public',
  'GET /metrics': 'public',
  'GET /admin/login': 'public',
  'POST /admin/session': 'public',
  'DELETE /admin/session': 'public',
  'GET /admin/assets/:version/:file': 'public',
  'GET /admin': 'admin',
  'POST /v1/api-keys': 'admin',
  'GET /v1/api-keys': 'admin',
  'DELETE /v1/api-keys/:id': 'admin',
  'POST /v1/moderations': 'model',
  'GET /v1/moderations/:id': 'model',
  'POST /v1/classify': 'model',
  'POST /v1/embeddings': 'model',
  'POST /openai/v1/moderations': 'model',
  'PUT /v1/policies/:id': 'admin',
  'GET /v1/policies': 'admin',
  'GET /v1/policies/:id': 'admin',
  'GET /v1/policies/:id/versions': 'admin',
  'POST /v1/policies/:id/rollback': 'admin',
  'DELETE /v1/policies/:id': 'admin',
  'GET /v1/policies/:id/audit': 'admin',
  'GET /v1/policy-audit': 'admin',
  'GET /v1/audit': 'admin',
  'POST /v1/policies/:id/test': 'admin',
  'PUT /v1/policies/:id/shadow': 'admin',
  'DELETE /v1/policies/:id/shadow': 'admin',
  'GET /v1/policies/:id/shadow/summary': 'admin',
  'POST /v1/policies/:id/calibrate': 'admin',
  'GET /v1/tenant-settings': 'admin',
  'PUT /v1/tenant-settings': 'admin',
  'GET /v1/policies/:id/labels/:label/bank': 'admin',
  'POST /v1/policies/:id/labels/:label/bank': 'admin',
  'DELETE /v1/policies/:id/bank/:entryId': 'admin',
  'GET /v1/search': 'admin',
  'POST /v1/search': 'admin',
  'POST /v1/webhook-endpoints': 'admin',
  'GET /v1/webhook-endpoints': 'admin',
  'GET /v1/webhook-endpoints/:id': 'admin',
  'PATCH /v1/webhook-endpoints/:id': 'admin',
  'DELETE /v1/webhook-endpoints/:id': 'admin',
  'POST /v1/webhook-endpoints/:id/rotate-secret': 'admin',
  'GET /v1/webhook-endpoints/:id/deliveries': 'admin',
  'POST /v1/webhook-endpoints/:id/replay-failed': 'admin',
  'GET /v1/webhook-deliveries/:id': 'admin',
  'POST /v1/webhook-deliveries/:id/replay': 'admin',
};

/** The admin page's policy API is the v1 policy router again, behind the session guard. */
const adminApiPrefix = '/admin/api';
/** bull-board: operators only (admins of tenant `default`). */
const queueBoardPrefix = '/admin/queues';

const baseKey = (route: RouteEntry) =>
  `${route.method} ${route.path.startsWith(`${adminApiPrefix}/`) ? route.path.slice(adminApiPrefix.length) : route.path}`;

function accessOf(route: RouteEntry): Access | undefined {
  if (route.path.startsWith(queueBoardPrefix)) return 'operator';
  return access[baseKey(route)];
}

let service: ServiceHarness;
let receiver: Receiver;
let fixtures: TenantResources;
let routes: RouteEntry[];

beforeAll(async () => {
  receiver = await startReceiver();
  service = await startService({
    roles: ['api', 'inference', 'webhooks'],
    env: {
      MODEL_DIR: await builtModel('color'),
      CLIPMOD_ALLOW_PRIVATE_NETWORKS: '127.0.0.0/8',
      CLIPMOD_WEBHOOK_RETRY_SCHEDULE_MS: '50',
    },
  });
  fixtures = await createTenantResources(service, receiver);
  routes = routeTable(service.app!);
});

afterAll(async () => {
  await service?.stop();
  await receiver?.stop();
});

/** The concrete URL of a route, its parameters filled with tenant A's resources. */
function urlOf(route: RouteEntry): string {
  const { ids } = fixtures;
  const base = baseKey(route).split(' ')[1]!;
  const idFor = base.startsWith('/v1/moderations')
    ? ids.moderation
    : base.startsWith('/v1/webhook-endpoints')
      ? ids.endpoint
      : base.startsWith('/v1/webhook-deliveries')
        ? ids.delivery
        : base.startsWith('/v1/api-keys')
          ? ids.spareKey
          : ids.policy;
  return route.path
    .replace(':entryId', ids.bankEntry)
    .replace(':label', ids.label)
    .replace(':id', idFor)
    .replace(/:[A-Za-z]+/g, 'x');
}

/** A request the owner's admin may make with success. */
function initOf(route: RouteEntry): { query?: string; init: RequestInit } {
  const { red } = fixtures;
  const redBase64 = Buffer.from(red).toString('base64');
  const bodies: Record<string, () => { query?: string; init: RequestInit }> = {
    'POST /v1/api-keys': () => ({ init: jsonInit('POST', { name: 'matrix', scopes: ['moderate'] }) }),
    'POST /v1/moderations': () => ({ init: { method: 'POST', body: imageForm(red, { policy: 'pa' }) } }),
    'POST /v1/classify': () => ({ init: { method: 'POST', body: imageForm(red, { labels: 'red,green' }) } }),
    'POST /v1/embeddings': () => ({ init: jsonInit('POST', { input: 'a red image' }) }),
    'POST /openai/v1/moderations': () => ({
      init: jsonInit('POST', {
        model: 'pa',
        input: [{ type: 'image_url', image_url: { url: `data:image/png;base64,${redBase64}` } }],
      }),
    }),
    'PUT /v1/policies/:id': () => ({ init: jsonInit('PUT', colorPolicy) }),
    'POST /v1/policies/:id/rollback': () => ({ init: jsonInit('POST', { version: 1 }) }),
    'POST /v1/policies/:id/test': () => ({ init: { method: 'POST', body: imageForm(red) } }),
    'PUT /v1/policies/:id/shadow': () => ({ init: jsonInit('PUT', { policy: colorPolicy }) }),
    'POST /v1/policies/:id/calibrate': () => ({
      init: jsonInit('POST', { examples: [{ label: 'red', image: { base64: redBase64 } }] }),
    }),
    'PUT /v1/tenant-settings': () => ({ init: jsonInit('PUT', {}) }),
    'POST /v1/policies/:id/labels/:label/bank': () => ({ init: { method: 'POST', body: imageForm(red) } }),
    'GET /v1/search': () => ({ query: '?q=red', init: {} }),
    'POST /v1/search': () => ({ init: { method: 'POST', body: imageForm(red) } }),
    'POST /v1/webhook-endpoints': () => ({ init: jsonInit('POST', { url: receiver.url('/matrix') }) }),
    'PATCH /v1/webhook-endpoints/:id': () => ({ init: jsonInit('PATCH', { description: 'matrix' }) }),
    'POST /v1/webhook-endpoints/:id/rotate-secret': () => ({ init: jsonInit('POST', {}) }),
    'POST /v1/webhook-endpoints/:id/replay-failed': () => ({
      init: jsonInit('POST', { since: new Date(Date.now() - 60_000).toISOString() }),
    }),
  };
  const made = bodies[baseKey(route)]?.() ?? { init: {} };
  return { query: made.query ?? '', init: { method: route.method, ...made.init } };
}

async function call(
  route: RouteEntry,
  headers: Record<string, string>,
): Promise<{ status: number; text: string }> {
  const { query, init } = initOf(route);
  const response = await fetch(`${service.baseUrl}${urlOf(route)}${query}`, {
    ...init,
    headers: { accept: 'application/json', ...(init.headers as Record<string, string>), ...headers },
    redirect: 'manual',
  });
  return { status: response.status, text: await response.text() };
}

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
const guarded = () => routes.filter((route) => accessOf(route) !== 'public');
const hasResourceParam = (route: RouteEntry) =>
  route.path.includes(':') && !route.path.startsWith(queueBoardPrefix);

/** Runs `check` on every route and returns one line per route whose status was not expected. */
async function mismatches(
  selected: RouteEntry[],
  headers: Record<string, string>,
  expected: (route: RouteEntry, status: number, text: string) => boolean,
): Promise<string[]> {
  const found: string[] = [];
  for (const route of selected) {
    const { status, text } = await call(route, headers);
    if (!expected(route, status, text))
      found.push(`${route.method} ${route.path} → ${status} ${text.slice(0, 120)}`);
  }
  return found;
}

describe('authorization matrix over the route table', () => {
  it('classifies every route the service answers', () => {
    expect(routes.length).toBeGreaterThan(45);
    expect(routes.filter((route) => accessOf(route) === undefined)).toEqual([]);
    expect(routes.some((route) => route.path.startsWith(queueBoardPrefix))).toBe(true);
  });

  it('answers 401 to every guarded route without a key or with a bad one', async () => {
    const bad = [
      {},
      bearer('cm_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'),
      bearer('garbage'),
      { authorization: 'Basic eDp5' },
    ];
    for (const headers of bad) {
      expect(await mismatches(guarded(), headers, (_route, status) => status === 401)).toEqual([]);
    }
  });

  it('refuses admin and operator routes to a moderate-only key, and lets it moderate', async () => {
    const found = await mismatches(guarded(), bearer(fixtures.keys.moderateOnly), (route, status) =>
      accessOf(route) === 'model' ? status >= 200 && status < 300 : status === 403,
    );
    expect(found).toEqual([]);
  });

  it("answers 404 to another tenant's admin for every resource of tenant A, and never shows A's ids", async () => {
    const { ids } = fixtures;
    const secretIds = [ids.moderation, ids.bankEntry, ids.endpoint, ids.delivery, ids.spareKey];
    // B's own policy of the same id comes last: until then every policy route must find nothing.
    const isUpsert = (route: RouteEntry) => baseKey(route) === 'PUT /v1/policies/:id';
    const ordered = [...guarded().filter((route) => !isUpsert(route)), ...guarded().filter(isUpsert)];
    const found = await mismatches(ordered, bearer(fixtures.keys.otherAdmin), (route, status, text) => {
      if (accessOf(route) === 'operator') return status === 403;
      if (status < 300 && secretIds.some((id) => text.includes(id))) return false;
      if (isUpsert(route)) return status === 201 || (status === 200 && route.path.startsWith(adminApiPrefix));
      // A log of A's resource may answer as an empty page of B's own (nothing of A in it).
      if (hasResourceParam(route)) return status === 404 || (status === 200 && /"data":\[\]/.test(text));
      if (baseKey(route) === 'POST /v1/moderations') return status === 404;
      // The OpenAI route falls back to the caller's `default` policy, which tenant B lacks.
      if (baseKey(route) === 'POST /openai/v1/moderations') return status === 404;
      return status >= 200 && status < 300;
    });
    expect(found).toEqual([]);
  });

  it("serves every route to the owner's admin (operator routes to the bootstrap admin)", async () => {
    // Deletions last, deepest first, so each still finds what it removes.
    const ordered = [
      ...guarded().filter((route) => route.method !== 'DELETE'),
      ...guarded()
        .filter((route) => route.method === 'DELETE')
        .sort((a, b) => b.path.length - a.path.length),
    ];
    const owner = await mismatches(
      ordered.filter((route) => accessOf(route) !== 'operator' && !route.path.startsWith(adminApiPrefix)),
      bearer(fixtures.keys.ownerAdmin),
      (_route, status) => status >= 200 && status < 300,
    );
    expect(owner).toEqual([]);
    // The admin page's copies and bull-board: the guard lets them through (their own 404s are fine).
    const passes = await mismatches(
      ordered.filter((route) => accessOf(route) === 'operator' || route.path.startsWith(adminApiPrefix)),
      bearer(service.adminKey),
      (_route, status) => status !== 401 && status !== 403 && status < 500,
    );
    expect(passes).toEqual([]);
  });
});
