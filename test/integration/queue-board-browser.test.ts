import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../helpers/browser.ts';
import { type ServiceHarness, startService } from '../helpers/service-harness.ts';

// bull-board in a real headless browser: a plain navigation has no Bearer header, so the operator
// signs in through the form, and the cookie must carry them through the board's page, scripts and API.

let service: ServiceHarness;
let browser: Browser;

beforeAll(async () => {
  service = await startService({ roles: ['api'] });
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await service?.stop();
});

describe('the queue board in a browser', () => {
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
