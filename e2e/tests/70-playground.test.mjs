// GraphQL Playground in a real browser: subscribe in sub's Playground, send
// in pub's, see the notice arrive.
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { ARTIFACTS_DIR, uniqueUser, useStack } from '../lib/harness.mjs';
import { launchChromium, watchPage } from '../lib/browser.mjs';
import { serveCdnFromNpm } from '../lib/cdn.mjs';
import { GraphiQLPage } from '../lib/graphiql.mjs';

const stack = useStack({ before, after }, { name: 'playground' });
const shots = path.join(ARTIFACTS_DIR, 'screenshots');
mkdirSync(shots, { recursive: true });

let browser;
before(async () => { browser = await launchChromium(); });
after(async () => { await browser?.close(); });

test('a subscription in sub\'s Playground shows a notice sent from pub\'s Playground', async () => {
  const user = uniqueUser('dave');
  const text = 'Hello from the Playground';
  const context = await browser.newContext({ viewport: { width: 1400, height: 800 } });
  const cdn = await serveCdnFromNpm(context);
  try {
    const subTab = await context.newPage();
    const pubTab = await context.newPage();
    const subProblems = watchPage(subTab, 'sub');
    const pubProblems = watchPage(pubTab, 'pub');
    const sub = new GraphiQLPage(subTab);
    const pub = new GraphiQLPage(pubTab);

    await sub.open(`${stack.subUrl}/`);
    await pub.open(`${stack.pubUrl}/`);

    await sub.setOperation(`subscription {\n  onNotificationReceived(userName: "${user}") {\n    id\n    text\n    timestamp\n  }\n}\n`);
    await sub.run();
    await stack.waitForSubscribers(user, 1);

    await pub.setOperation(`mutation {\n  sendNotification(to: "${user}", text: "${text}") {\n    receivedUsers\n    id\n  }\n}\n`);
    await pub.run();
    const sent = JSON.parse(await pub.waitForResponse(/receivedUsers/));
    assert.equal(sent.data?.sendNotification?.receivedUsers, 1, JSON.stringify(sent));
    await pubTab.screenshot({ path: path.join(shots, 'playground-pub.png') });

    const shown = JSON.parse(await sub.waitForResponse(new RegExp(text)));
    const notice = shown.data.onNotificationReceived;
    assert.equal(notice.text, text);
    assert.equal(notice.id, sent.data.sendNotification.id);
    assert.ok(Math.abs(Number(notice.timestamp) - Date.now() / 1000) < 5, `timestamp ${notice.timestamp}`);
    await subTab.screenshot({ path: path.join(shots, 'playground-sub.png') });

    // The Run button stops a running subscription; the server lets go of it.
    await sub.run();
    await stack.waitForSubscribers(user, 0);

    assert.deepEqual(cdn.missing, [], 'every CDN file should come from the npm packages');
    assert.ok(cdn.served.some((u) => u.includes('/graphiql@')), `served ${JSON.stringify(cdn.served)}`);
    assert.deepEqual([...subProblems, ...pubProblems], []);
  } finally {
    await context.close();
  }
});
