import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminSession, loadAdminSessionSecret } from '../../services/api/admin-session.ts';
import { ApiKeyStore } from '../../services/api/auth/index.ts';
import { type ServiceHarness, startService } from '../helpers/service-harness.ts';

// The admin session cookie and bull-board behind it, on the real API (no model needed: api role only).

let service: ServiceHarness;

beforeAll(async () => {
  service = await startService({ roles: ['api'] });
});

afterAll(async () => {
  await service?.stop();
});

const anonymous = (path: string, init: RequestInit = {}) =>
  fetch(`${service.baseUrl}${path}`, { redirect: 'manual', ...init });

async function signIn(key: string, headers: Record<string, string> = {}) {
  return anonymous('/admin/session', {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams({ key, next: '/admin/queues' }).toString(),
  });
}

/** `name=value` of the session cookie a response set. */
function cookieOf(response: Response): string {
  const header = response.headers.get('set-cookie') ?? '';
  return header.split(';')[0]!;
}

async function newKey(scopes: string[], tenant = 'default'): Promise<{ id: string; key: string }> {
  const response = await service.request('/v1/api-keys', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'admin-session-test', scopes, tenant }),
  });
  expect(response.status).toBe(201);
  return (await response.json()) as { id: string; key: string };
}

describe('admin sign-in', () => {
  it('sends a browser without a session to the login form, and API clients a 401', async () => {
    const browser = await anonymous('/admin/queues', { headers: { accept: 'text/html' } });
    expect(browser.status).toBe(303);
    expect(browser.headers.get('location')).toBe('/admin/login?next=%2Fadmin%2Fqueues');
    const form = await anonymous('/admin/login?next=%2Fadmin%2Fqueues');
    expect(form.status).toBe(200);
    expect(form.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(await form.text()).toContain('<input type="hidden" name="next" value="/admin/queues">');
    const client = await anonymous('/admin/queues/api/queues', { headers: { accept: 'application/json' } });
    expect(client.status).toBe(401);
    expect(((await client.json()) as { code: string }).code).toBe('unauthorized');
  });

  it('exchanges the admin key for an HttpOnly, SameSite=Strict cookie scoped to /admin', async () => {
    const response = await signIn(service.adminKey);
    expect(response.status).toBe(303);
    expect(response.headers.get('location')).toBe('/admin/queues');
    const attributes = (response.headers.get('set-cookie') ?? '').split('; ');
    expect(attributes[0]).toMatch(/^clipmod_admin_session=[\w-]+\.[\w-]+$/);
    expect(attributes.slice(1).sort()).toEqual([
      'HttpOnly',
      'Max-Age=3600',
      'Path=/admin',
      'SameSite=Strict',
    ]);
    const behindTls = await signIn(service.adminKey, { 'x-forwarded-proto': 'https' });
    expect(behindTls.headers.get('set-cookie')).toContain('; Secure');
  });

  it('refuses unknown keys, keys without the admin scope, cross-site forms, and redirects off admin pages', async () => {
    expect((await signIn('cm_not-a-real-key')).status).toBe(401);
    const crossSite = await signIn(service.adminKey, { origin: 'http://evil.example' });
    expect(crossSite.status).toBe(403);
    expect(crossSite.headers.get('set-cookie')).toBeNull();
    const moderateOnly = await newKey(['moderate']);
    expect((await signIn(moderateOnly.key)).status).toBe(403);
    for (const next of ['https://evil.example/', '//evil.example/admin', '/v1/api-keys']) {
      const response = await anonymous('/admin/session', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ key: service.adminKey, next }).toString(),
      });
      expect(response.headers.get('location'), next).toBe('/admin');
    }
  });

  it('answers JSON to a Bearer sign-in and clears the cookie on sign-out', async () => {
    const response = await service.request('/admin/session', { method: 'POST' });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      tenant: 'default',
      scopes: ['moderate', 'admin'],
      expiresInSeconds: 3600,
    });
    const signOut = await anonymous('/admin/session', { method: 'DELETE' });
    expect(signOut.status).toBe(204);
    expect(signOut.headers.get('set-cookie')).toMatch(/^clipmod_admin_session=; Path=\/admin; Max-Age=0;/);
  });
});

describe('bull-board at /admin/queues', () => {
  it('serves the board and its queue API to a signed-in operator', async () => {
    const cookie = cookieOf(await signIn(service.adminKey));
    const page = await anonymous('/admin/queues', { headers: { cookie, accept: 'text/html' } });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('clipmod queues');
    const queues = await anonymous('/admin/queues/api/queues', { headers: { cookie } });
    expect(queues.status).toBe(200);
    const names = ((await queues.json()) as { queues: { name: string }[] }).queues.map((queue) => queue.name);
    expect(names.sort()).toEqual(['inference', 'webhooks']);
  });

  it('accepts the admin key as a Bearer header too', async () => {
    const response = await service.request('/admin/queues/api/queues');
    expect(response.status).toBe(200);
  });

  it('is for operators only: an admin of another tenant is refused', async () => {
    const tenantAdmin = await newKey(['admin'], 'acme');
    const cookie = cookieOf(await signIn(tenantAdmin.key));
    expect(cookie).toMatch(/^clipmod_admin_session=/);
    const response = await anonymous('/admin/queues/api/queues', { headers: { cookie } });
    expect(response.status).toBe(403);
  });

  it('refuses a cross-origin state change made with the cookie', async () => {
    const cookie = cookieOf(await signIn(service.adminKey));
    const pause = (origin: string) =>
      anonymous('/admin/queues/api/queues/inference/pause', { method: 'PUT', headers: { cookie, origin } });
    expect((await pause('http://evil.example')).status).toBe(403);
    expect(await service.redis.hget(`${service.prefix}:inference:meta`, 'paused')).toBeNull();
    const sameOrigin = await pause(service.baseUrl);
    expect(sameOrigin.status).toBeLessThan(300);
    expect(await service.redis.hget(`${service.prefix}:inference:meta`, 'paused')).toBe('1');
    await anonymous('/admin/queues/api/queues/inference/resume', { method: 'PUT', headers: { cookie } });
  });
});

describe('session cookies', () => {
  it('end when the key is revoked, when tampered with, and when expired', async () => {
    const admin = await newKey(['admin']);
    const cookie = cookieOf(await signIn(admin.key));
    const board = () => anonymous('/admin/queues/api/queues', { headers: { cookie } });
    expect((await board()).status).toBe(200);
    const [name, value] = cookie.split('=') as [string, string];
    const tampered = `${name}=${value.slice(0, -2)}${value.endsWith('AA') ? 'BB' : 'AA'}`;
    expect((await anonymous('/admin/queues/api/queues', { headers: { cookie: tampered } })).status).toBe(401);
    expect((await service.request(`/v1/api-keys/${admin.id}`, { method: 'DELETE' })).status).toBe(204);
    expect((await board()).status).toBe(401);

    let nowMs = Date.parse('2030-01-01T00:00:00Z');
    const store = new ApiKeyStore({
      redis: service.redis,
      prefix: service.prefix,
      adminKey: service.adminKey,
    });
    const secret = await loadAdminSessionSecret(service.redis, service.prefix);
    const session = createAdminSession({ store, secret, ttlSeconds: 60, now: () => nowMs });
    const issued = session.issue({ tenant: 'default', keyId: 'bootstrap', scopes: ['admin'] });
    nowMs += 59_000;
    expect(await session.verify(issued)).toEqual({
      tenant: 'default',
      keyId: 'bootstrap',
      scopes: ['admin'],
    });
    nowMs += 1_000;
    expect(await session.verify(issued)).toBeUndefined();
  });

  it('are signed with one secret per deployment, shared by every API replica', async () => {
    const first = await loadAdminSessionSecret(service.redis, service.prefix);
    const second = await loadAdminSessionSecret(service.redis, service.prefix);
    expect(first.length).toBe(32);
    expect(second.equals(first)).toBe(true);
  });
});
