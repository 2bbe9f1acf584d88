// The /demo page of sub in headless Chromium: it connects by itself, shows
// a notice sent from its own form (through pub) in every tab of the
// recipient exactly once and in nobody else's, and loads nothing from
// anywhere but sub and pub.
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { ARTIFACTS_DIR, PROBE_PREFIX, isProbe, uniqueUser, useStack } from '../lib/harness.mjs';
import { launchChromium, watchPage } from '../lib/browser.mjs';

const stack = useStack({ before, after }, { name: 'demo' });
const shots = path.join(ARTIFACTS_DIR, 'screenshots');
mkdirSync(shots, { recursive: true });

let browser;
before(async () => { browser = await launchChromium(); });
after(async () => { await browser?.close(); });

/** Opens the demo for user in a new tab of context and waits until it listens. */
async function openDemo(context, user, name) {
  const page = await context.newPage();
  const problems = watchPage(page, name);
  const foreign = [];
  const allowed = [stack.subUrl, stack.pubUrl, stack.subWsUrl];
  page.on('request', (req) => { if (!allowed.some((u) => req.url().startsWith(u))) foreign.push(req.url()); });
  page.on('websocket', (ws) => { if (!ws.url().startsWith(stack.subWsUrl)) foreign.push(ws.url()); });
  const query = new URLSearchParams({ user, pub: `${stack.pubUrl}/query` });
  await page.goto(`${stack.subUrl}/demo?${query}`);
  await page.locator('#status[data-state="live"]').waitFor({ timeout: 10_000 });
  return { page, problems, foreign };
}

const texts = async (page) => (await page.locator('#notices li .text').allTextContents()).filter((t) => !isProbe(t));

/** Takes the probe notices (the test's, not the page's) out of the list before a screenshot. */
async function screenshot(page, file, options = {}) {
  await page.evaluate((prefix) => {
    const items = [...document.querySelectorAll('#notices li')];
    for (const li of items) if (li.querySelector('.text').textContent.startsWith(prefix)) li.remove();
    document.getElementById('count').textContent = String(document.querySelectorAll('#notices li').length);
  }, PROBE_PREFIX);
  await page.screenshot({ path: path.join(shots, file), ...options });
}

async function sendFromPage(page, to, text) {
  await page.fill('#to', to);
  await page.fill('#text', text);
  await page.click('#send-button');
  await page.locator('#send-hint', { hasText: /^Sent to \d+ live/ }).waitFor({ timeout: 10_000 });
  return page.locator('#send-hint').textContent();
}

test('a notice sent from the page reaches both tabs of its user once and nobody else', async () => {
  const [bob, alice] = [uniqueUser('bob'), uniqueUser('alice')];
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  try {
    const bob1 = await openDemo(context, bob, 'bob tab 1');
    const bob2 = await openDemo(context, bob, 'bob tab 2');
    const alice1 = await openDemo(context, alice, 'alice tab');
    await stack.waitForSubscribers(bob, 2);
    await stack.waitForSubscribers(alice, 1);

    const text = 'Your order #1042 has shipped';
    assert.equal(await sendFromPage(bob1.page, bob, text), 'Sent to 2 live subscriptions.');
    // Notices to one subscription arrive in order: once the fence is in, a
    // duplicate of the first would be too.
    await stack.send(bob, 'Invoice 2026-11 is ready');
    await stack.send(alice, 'Welcome, Alice');
    for (const tab of [bob1, bob2]) {
      await tab.page.locator('#notices li', { hasText: 'Invoice 2026-11' }).waitFor();
      assert.deepEqual(await texts(tab.page), ['Invoice 2026-11 is ready', text]);
    }
    await alice1.page.locator('#notices li', { hasText: 'Welcome, Alice' }).waitFor();
    assert.deepEqual(await texts(alice1.page), ['Welcome, Alice']);

    // The time shown is the publish time.
    const stamp = await bob2.page.locator('#notices li time').first().getAttribute('datetime');
    assert.ok(Math.abs(Date.parse(stamp) - Date.now()) < 5_000, `time ${stamp}`);

    await stack.send(bob, 'Team meeting moved to 15:00 — room 4B');
    await bob1.page.locator('#notices li', { hasText: 'room 4B' }).waitFor();
    await bob1.page.fill('#text', 'Thanks!');
    await screenshot(bob1.page, 'demo-desktop.png');

    // Disconnecting lets the server release the subscription.
    await bob2.page.click('#connect');
    await stack.waitForSubscribers(bob, 1);

    for (const tab of [bob1, bob2, alice1]) {
      assert.deepEqual(tab.problems, []);
      assert.deepEqual(tab.foreign, [], 'the page loads nothing from elsewhere');
    }
  } finally {
    await context.close();
  }
});

test('on a phone', async () => {
  const user = uniqueUser('carol');
  const context = await browser.newContext({
    viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true,
  });
  try {
    const tab = await openDemo(context, user, 'phone');
    await stack.waitForSubscribers(user, 1);
    await sendFromPage(tab.page, user, 'Your table is ready');
    await stack.send(user, 'A very long notice that has to wrap on a small screen without making the page scroll sideways: 東京都渋谷区のお店からのお知らせです');
    await tab.page.locator('#notices li', { hasText: '東京都' }).waitFor();
    const overflow = await tab.page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.equal(overflow, 0, 'no horizontal scrolling');
    await screenshot(tab.page, 'demo-phone.png', { fullPage: true });
    assert.deepEqual(tab.problems, []);
    assert.deepEqual(tab.foreign, []);
  } finally {
    await context.close();
  }
});
