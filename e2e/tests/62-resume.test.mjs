// graphql-ws loses its connection from the server's side (sub stops, a
// deploy), reconnects by itself and, with the README's recipe (keep the
// last cursor in the subscription's variables: graphql-ws re-sends the same
// payload object when it re-subscribes), receives the notices published
// while it was away exactly once, then live ones.
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createNotificationsClient } from '../clients/graphql-ws.mjs';
import { Inbox, uniqueUser, useStack, waitUntil } from '../lib/harness.mjs';

const stack = useStack({ before, after }, { name: 'resume' });

const RESUMABLE = /* GraphQL */ `
  subscription OnNotification($userName: String!, $after: String) {
    onNotificationReceived(userName: $userName, after: $after) { id text timestamp scope cursor }
  }
`;

test('graphql-ws resumes after its last cursor and misses nothing across a server-side disconnect', async () => {
  const user = uniqueUser('rita');
  let connects = 0;
  const client = createNotificationsClient(stack.subWsUrl, {
    retryAttempts: 30,
    shouldRetry: () => true,
    retryWait: () => new Promise((r) => setTimeout(r, 200)),
    on: { connected: () => { connects++; } },
  });
  const inbox = new Inbox(user);
  // The recipe: one payload object; every notice's cursor goes into its
  // variables, so the re-subscribe after a reconnect resumes after it.
  const payload = { query: RESUMABLE, variables: { userName: user, after: null } };
  try {
    client.subscribe(payload, {
      next: ({ data, errors }) => {
        if (errors) return inbox.fail(errors);
        payload.variables.after = data.onNotificationReceived.cursor;
        inbox.push(data.onNotificationReceived);
      },
      error: inbox.fail,
      complete: () => {},
    });
    await stack.waitForSubscribers(user, 1);
    await stack.send(user, 'before');
    await inbox.waitForText('before');
    assert.ok(payload.variables.after, 'a notice carries its cursor');

    await stack.sub.stop(); // the server cuts the connection
    const missed = [];
    for (let i = 0; i < 5; i++) {
      missed.push(`missed ${i}`);
      const r = await stack.send(user, `missed ${i}`);
      assert.equal(r.receivedUsers, 0);
    }
    stack.sub.restarts++;
    stack.sub.start();
    await stack.waitReady(stack.sub, stack.subUrl);
    await waitUntil(() => connects >= 2, { timeout: 30_000, describe: () => `a second "connected" (have ${connects})` });
    await stack.waitForSubscribers(user, 1, { timeout: 30_000 });
    await stack.send(user, 'after');
    await inbox.waitForText('after');
    assert.deepEqual(inbox.texts(), ['before', ...missed, 'after']);
    assert.deepEqual(inbox.errors, []);
  } finally {
    await client.dispose();
  }
});
