// sub restarts (a deploy); graphql-ws's own retry brings the subscription back.
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createNotificationsClient, subscribeToNotices } from '../clients/graphql-ws.mjs';
import { Inbox, uniqueUser, useStack, waitUntil } from '../lib/harness.mjs';
import { assertFreshNotice } from '../lib/expect.mjs';

const stack = useStack({ before, after }, { name: 'reconnect' });

test('graphql-ws reconnects by itself after sub restarts and receives later notices', async (t) => {
  const user = uniqueUser('carol');
  const closes = [];
  let connects = 0;
  const client = createNotificationsClient(stack.subWsUrl, {
    retryAttempts: 20,
    shouldRetry: () => true,
    on: {
      connected: () => { connects++; },
      closed: (event) => closes.push(`${event.code} ${event.reason}`),
    },
  });
  const inbox = new Inbox(user);
  const errors = [];
  try {
    subscribeToNotices(client, user, inbox.push, (err) => errors.push(err));
    await stack.waitForSubscribers(user, 1);
    const before = await stack.send(user, 'before restart');
    assertFreshNotice(await inbox.waitForText('before restart'), { text: 'before restart', id: before.id });

    const exit = await stack.restartSub();
    assert.ok(closes.length >= 1, 'the client should have seen its connection close');
    // A subscription that errored out would not come back: retry must be silent.
    await stack.waitForSubscribers(user, 1, { timeout: 30_000 });
    await waitUntil(() => connects >= 2, { describe: () => `a second "connected" (have ${connects})` });

    const after = await stack.send(user, 'after restart');
    assert.equal(after.receivedUsers, 1);
    assertFreshNotice(await inbox.waitForText('after restart'), { text: 'after restart', id: after.id });
    assert.deepEqual(inbox.texts(), ['before restart', 'after restart']);
    assert.deepEqual(errors, [], 'the subscription should not have errored');
    t.diagnostic(`close events seen by the client: ${JSON.stringify(closes)}`);
    assert.equal(exit.code, 0, `sub should exit 0 on SIGTERM, got ${JSON.stringify(exit)}`);
  } finally {
    await client.dispose();
  }
});
