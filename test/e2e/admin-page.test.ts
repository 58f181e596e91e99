import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../helpers/browser.ts';
import { solidImage } from '../helpers/images.ts';
import { builtModel } from '../helpers/models.ts';
import { type ServiceHarness, startService } from '../helpers/service-harness.ts';

// The admin page in real headless Chromium against the real service on the `color` model: sign in,
// edit a threshold, save, see the new version and its diff, see the dry run's verdict change, roll
// back, and get the API's field-path errors next to the fields. Every request the browser makes must
// stay on loopback, and the page must log no console error.

const screenshotPath = fileURLToPath(new URL('../../.cache/artifacts/admin-page.png', import.meta.url));

// Measured on the color model: softmax over red and five other colours gives this pinkish red 0.586 for
// "a red image", so threshold 0.9 lets it through and 0.5 blocks it.
const pinkishRed = [200, 80, 100] as const;
const policy = {
  labels: [{ id: 'red', prompts: ['a red image'], threshold: 0.9, action: 'block' }],
  baseline: ['a green image', 'a blue image', 'a yellow image', 'a black image', 'a white image'],
};

let service: ServiceHarness;
let browser: Browser;
let testImage: Buffer;
const offLoopback: string[] = [];
let requestCount = 0;

beforeAll(async () => {
  const [started, launched] = await Promise.all([
    builtModel('color').then((model) => startService({ env: { MODEL_DIR: model } })),
    // launch() gives every run a fresh temporary profile (user-data dir), removed on close.
    launchChromium(),
  ]);
  [service, browser] = [started, launched];
  testImage = Buffer.from(await solidImage('png', 64, 64, pinkishRed));
  const put = await service.request('/v1/policies/colors', {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(policy),
  });
  expect(put.status).toBe(201);
});

afterAll(async () => {
  await browser?.close();
  await service?.stop();
});

/** Loopback hosts only; blob: and data: URLs never touch the network. */
function isLocal(url: string): boolean {
  if (url.startsWith('data:')) return true;
  const parsed = new URL(url.startsWith('blob:') ? url.slice('blob:'.length) : url);
  return ['127.0.0.1', '[::1]', 'localhost'].includes(parsed.hostname);
}

/** A fresh context (no cookies) whose every request is checked, and aborted unless it is local. */
async function newContext(): Promise<BrowserContext> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
  await context.route('**/*', async (route) => {
    const url = route.request().url();
    requestCount += 1;
    if (isLocal(url)) return route.continue();
    offLoopback.push(url);
    return route.abort('blockedbyclient');
  });
  return context;
}

function consoleErrorsOf(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text());
  });
  page.on('pageerror', (error) => errors.push(error.message));
  return errors;
}

async function signIn(page: Page, key: string, path = '/admin?policy=colors'): Promise<void> {
  await page.goto(`${service.baseUrl}${path}`);
  expect(new URL(page.url()).pathname).toBe('/admin/login');
  await page.fill('input[name="key"]', key);
  await Promise.all([page.waitForURL(`${service.baseUrl}${path}`), page.click('button[type="submit"]')]);
}

const row = (page: Page, label: string) => page.locator(`#dry-run-result tr[data-label="${label}"]`);

describe('the admin page in headless Chromium', () => {
  let context: BrowserContext;
  let page: Page;
  let consoleErrors: string[];

  beforeAll(async () => {
    context = await newContext();
    page = await context.newPage();
    consoleErrors = consoleErrorsOf(page);
  });

  afterAll(async () => {
    await context?.close();
  });

  it('signs in, edits a threshold, saves, and shows the new version and the changed verdict', async () => {
    await signIn(page, service.adminKey);
    const threshold = page.locator('#labels-0-threshold');
    await expect.poll(() => threshold.inputValue()).toBe('0.9');
    await expect.poll(() => page.textContent('#policy-version')).toBe('live v1');

    await page.setInputFiles('#image-input', {
      name: 'pinkish.png',
      mimeType: 'image/png',
      buffer: testImage,
    });
    await row(page, 'red').waitFor();
    expect(await row(page, 'red').getAttribute('data-triggered')).toBe('false');
    expect(await page.textContent('#verdict')).toBe('Verdict: allow');

    // The dry run follows the draft live, before anything is saved.
    await threshold.fill('0.5');
    await page.locator('#dry-run-result tr[data-label="red"][data-triggered="true"]').waitFor();
    expect(await page.textContent('#verdict')).toBe('Verdict: block (flagged)');

    await page.getByRole('button', { name: 'Save as a new version' }).click();
    const second = page.locator('#versions li[data-version="2"]');
    await second.waitFor();
    expect(await second.textContent()).toContain('labels.red.threshold: 0.9 → 0.5');
    expect(await second.locator('.badge.live').count()).toBe(1);
    expect(await page.textContent('#status')).toBe('Saved version 2.');
    await expect.poll(() => page.textContent('#policy-list')).toContain('v2');

    const stored = (await (await service.request('/v1/policies/colors')).json()) as any;
    expect(stored).toMatchObject({ version: 2, author: 'bootstrap' });
    expect(stored.document.labels[0].threshold).toBe(0.5);
    await page.locator('#dry-run-result tr[data-label="red"][data-triggered="true"]').waitFor();

    await mkdir(dirname(screenshotPath), { recursive: true });
    await page.screenshot({ path: screenshotPath, fullPage: true });
    expect(existsSync(screenshotPath)).toBe(true);
    expect(consoleErrors).toEqual([]);
  });

  it('rolls back from the history, and scores an image dropped on the drop zone', async () => {
    await page.getByRole('button', { name: 'Roll back to v1' }).click();
    const third = page.locator('#versions li[data-version="3"]');
    await third.waitFor();
    expect(await third.textContent()).toContain('rollback to v1');
    expect(await third.textContent()).toContain('labels.red.threshold: 0.5 → 0.9');
    expect(await page.locator('#labels-0-threshold').inputValue()).toBe('0.9');
    await page.locator('#dry-run-result tr[data-label="red"][data-triggered="false"]').waitFor();

    const red = [...(await solidImage('png', 32, 32, [230, 20, 20]))];
    // Runs in the page; the tests' TypeScript has no DOM types, hence the cast.
    const dataTransfer = await page.evaluateHandle((bytes) => {
      const transfer = new (globalThis as any).DataTransfer();
      transfer.items.add(new File([new Uint8Array(bytes)], 'red.png', { type: 'image/png' }));
      return transfer;
    }, red);
    await page.dispatchEvent('#drop-zone', 'drop', { dataTransfer });
    await page.locator('#dry-run-result tr[data-label="red"][data-triggered="true"]').waitFor();
    expect(await page.textContent('#dry-run-result')).toContain('“a red image”');
    expect(consoleErrors).toEqual([]);
  });

  it("shows the API's field-path errors next to the fields and saves nothing", async () => {
    await page.locator('#labels-0-threshold').fill('2');
    await page.getByRole('button', { name: 'Save as a new version' }).click();
    const note = page.locator('#labels-0-threshold-error');
    await expect.poll(() => note.textContent()).toContain('must be between 0 and 1');
    expect(await page.getAttribute('#labels-0-threshold', 'aria-invalid')).toBe('true');
    expect(await page.textContent('#form-errors')).toContain('labels[0].threshold');
    await expect.poll(() => page.textContent('#status')).toBe('Not saved: see the marked fields.');
    const versions = (await (await service.request('/v1/policies/colors/versions')).json()) as any;
    expect(versions.data).toHaveLength(3);
    // The browser reports each refused request (400) on the console; nothing else may appear there.
    expect(consoleErrors.filter((text) => !text.includes('status of 400'))).toEqual([]);
  });

  it('runs the draft in shadow and shows the summary with the label that flipped', async () => {
    await page.locator('#labels-0-threshold').fill('0.5');
    await page.getByRole('button', { name: 'Run this draft in shadow' }).click();
    const summary = page.locator('#shadow-summary');
    await expect.poll(() => summary.textContent()).toContain('v4 runs beside live v3: 0 moderations');

    const moderation = await service.request('/v1/moderations?wait=20000&policy=colors', {
      method: 'POST',
      headers: { 'content-type': 'image/png' },
      body: testImage,
    });
    expect(((await moderation.json()) as any).verdict.action).toBe('allow');
    await page.reload();
    await expect.poll(() => summary.textContent()).toContain('1 moderation, 0.0 % agreement');
    expect(await summary.getByRole('row', { name: 'allow → block 1', exact: true }).count()).toBe(1);
    // Label, newly triggered, cleared: the candidate blocks what the live version allowed.
    expect(await summary.getByRole('row', { name: 'red 1 0', exact: true }).count()).toBe(1);

    await page.getByRole('button', { name: 'Stop shadow' }).click();
    await expect.poll(() => summary.textContent()).toContain('No candidate runs in shadow');
    expect(consoleErrors.filter((text) => !text.includes('status of 400'))).toEqual([]);
  });

  it('creates a new policy from the sidebar with the keyboard', async () => {
    await page.fill('#new-policy-id', 'blues');
    await Promise.all([page.waitForURL(/policy=blues$/), page.press('#new-policy-id', 'Enter')]);
    await expect.poll(() => page.textContent('#policy-version')).toBe('new, not saved yet');
    await page.fill('#labels-0-id', 'blue');
    await page.fill('#labels-0-prompts', 'a blue image\n');
    await page.fill('#baseline', 'a red image\na green image');
    await page.focus('#labels-0-threshold');
    await page.keyboard.press('Control+A');
    await page.keyboard.type('0.6');
    await page.press('#labels-0-threshold', 'Enter');
    await page.locator('#versions li[data-version="1"]').waitFor();
    expect(await page.textContent('#status')).toBe('Saved version 1.');
    const stored = (await (await service.request('/v1/policies/blues')).json()) as any;
    expect(stored.document.labels).toEqual([
      { id: 'blue', prompts: ['a blue image'], threshold: 0.6, action: 'review' },
    ]);
    await expect.poll(() => page.textContent('#policy-list')).toContain('blues');
    expect(consoleErrors.filter((text) => !text.includes('status of 400'))).toEqual([]);
  });
});

describe('admin page access', () => {
  it('sends a browser without a session to the login page', async () => {
    const context = await newContext();
    const page = await context.newPage();
    await page.goto(`${service.baseUrl}/admin`);
    const url = new URL(page.url());
    expect([url.pathname, url.searchParams.get('next')]).toEqual(['/admin/login', '/admin']);
    const api = await fetch(`${service.baseUrl}/admin/api/v1/policies`, {
      headers: { accept: 'application/json' },
    });
    expect(api.status).toBe(401);
    await context.close();
  });

  it('refuses a wrong key and sets no session cookie', async () => {
    const context = await newContext();
    const page = await context.newPage();
    await page.goto(`${service.baseUrl}/admin`);
    await page.fill('input[name="key"]', 'not-a-key');
    const [response] = await Promise.all([
      page.waitForResponse((answer) => answer.url().endsWith('/admin/session')),
      page.click('button[type="submit"]'),
    ]);
    expect(response.status()).toBe(401);
    expect(await context.cookies()).toEqual([]);
    await page.goto(`${service.baseUrl}/admin`);
    expect(new URL(page.url()).pathname).toBe('/admin/login');
    await context.close();
  });

  it('serves the page under a strict CSP, uncached, with immutable versioned assets', async () => {
    const page = await service.request('/admin', { headers: { accept: 'text/html' } });
    expect(page.status).toBe(200);
    const csp = page.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(page.headers.get('cache-control')).toBe('no-store');
    const html = await page.text();
    const script = /src="(\/admin\/assets\/[0-9a-f]+\/admin\.js)"/.exec(html)?.[1];
    expect(html).not.toMatch(/<script>|<style>|style="/);
    const asset = await fetch(`${service.baseUrl}${script}`);
    expect(asset.status).toBe(200);
    expect(asset.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(asset.headers.get('content-type')).toContain('text/javascript');
    expect((await fetch(`${service.baseUrl}/admin/assets/0000/admin.js`)).status).toBe(404);
  });

  it('let the browser reach nothing but loopback', () => {
    expect(requestCount).toBeGreaterThan(10);
    expect(offLoopback).toEqual([]);
  });
});
