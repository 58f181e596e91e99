import { existsSync } from 'node:fs';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ServiceHarness, startService } from '../helpers/service-harness.ts';

// bull-board in a real headless browser: a plain navigation has no Bearer header, so the operator
// signs in through the form, and the cookie must carry them through the board's page, scripts and API.

const chromiumPath = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((path) => existsSync(path));
if (!chromiumPath)
  console.warn('chromium not found: install the Debian package "chromium" to run the board test');

let service: ServiceHarness;
let browser: Browser;

beforeAll(async () => {
  if (!chromiumPath) return;
  service = await startService({ roles: ['api'] });
  browser = await chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox'] });
});

afterAll(async () => {
  await browser?.close();
  await service?.stop();
});

describe.skipIf(!chromiumPath)('the queue board in a browser', () => {
  it('signs in through the form and shows every queue', async () => {
    const page = await browser.newPage();
    await page.goto(`${service.baseUrl}/admin/queues`);
    expect(new URL(page.url()).pathname).toBe('/admin/login');
    await page.fill('input[name="key"]', service.adminKey);
    await Promise.all([
      page.waitForURL(`${service.baseUrl}/admin/queues`),
      page.click('button[type="submit"]'),
    ]);
    await page.getByText('webhooks', { exact: false }).first().waitFor({ timeout: 15_000 });
    const text = await page.textContent('body');
    expect(text).toContain('inference');
    const cookies = await page.context().cookies();
    expect(cookies.find((cookie) => cookie.name === 'clipmod_admin_session')).toMatchObject({
      httpOnly: true,
      sameSite: 'Strict',
      path: '/admin',
    });
    await page.close();
  });
});
