import { existsSync } from 'node:fs';
import { type Browser, chromium } from 'playwright-core';

// Debian's Chromium, headless, with every background connection turned off: browser tests may only
// ever talk to the loopback service under test. CI installs the package (.ci/run); a missing browser
// fails loudly instead of skipping the only tests of the admin pages.

export const chromiumPath = '/usr/bin/chromium';

const chromiumArgs = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

/** Launches with a fresh temporary profile (removed on close). */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(chromiumPath)) {
    throw new Error(`Chromium is missing at ${chromiumPath}: install it with "apt-get install chromium"`);
  }
  return chromium.launch({ executablePath: chromiumPath, args: chromiumArgs });
}
