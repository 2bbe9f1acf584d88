// Headless Chromium from Debian's package, driven by playwright-core (which
// brings no browser of its own).
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

export function launchChromium() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
}

/** Records what goes wrong in a page, for assertions and failure messages. */
export function watchPage(page, name) {
  const problems = [];
  page.on('pageerror', (err) => problems.push(`${name}: page error: ${err.message}`));
  page.on('console', (msg) => { if (msg.type() === 'error') problems.push(`${name}: console error: ${msg.text()}`); });
  page.on('requestfailed', (req) => problems.push(`${name}: request failed: ${req.url()} ${req.failure()?.errorText}`));
  return problems;
}
