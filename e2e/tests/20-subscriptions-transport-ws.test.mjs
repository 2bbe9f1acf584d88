// subscriptions-transport-ws (legacy subprotocol graphql-ws), for older apps.
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createNotificationsClient, subscribeToNotices } from '../clients/subscriptions-transport-ws.mjs';
import { Inbox, describeErrors, uniqueUser, useStack } from '../lib/harness.mjs';
import { assertFreshNotice } from '../lib/expect.mjs';

const stack = useStack({ before, after }, { name: 'subscriptions-transport-ws' });

test('receives a notice sent through pub, and unsubscribing ends the subscription on the server', async () => {
  const user = uniqueUser('alice');
  const client = createNotificationsClient(stack.subWsUrl);
  const inbox = new Inbox(user);
  try {
    const unsubscribe = subscribeToNotices(client, user, inbox.push, inbox.fail);
    await stack.waitForSubscribers(user, 1);

    const text = 'Your order has shipped';
    const sent = await stack.send(user, text);
    assert.equal(sent.receivedUsers, 1);
    assertFreshNotice(await inbox.waitForText(text), { text, id: sent.id });

    unsubscribe(); // sends "stop"; the socket stays open
    await stack.waitForSubscribers(user, 0);
    assert.equal(client.status, 1 /* WebSocket.OPEN */, 'the connection should stay open after stop');
    assert.deepEqual(inbox.texts(), [text]);
    assert.equal(inbox.errors.length, 0, describeErrors(inbox.errors));
  } finally {
    client.close();
  }
});

test('stopping one of two subscriptions on one connection ends only that one', async () => {
  const [alice, bob] = [uniqueUser('alice'), uniqueUser('bob')];
  const client = createNotificationsClient(stack.subWsUrl);
  const aliceInbox = new Inbox(alice);
  const bobInbox = new Inbox(bob);
  try {
    subscribeToNotices(client, alice, aliceInbox.push, aliceInbox.fail);
    const unsubscribeBob = subscribeToNotices(client, bob, bobInbox.push, bobInbox.fail);
    await stack.waitForSubscribers(alice, 1);
    await stack.waitForSubscribers(bob, 1);

    unsubscribeBob();
    await stack.waitForSubscribers(bob, 0);

    const sent = await stack.send(alice, 'still here');
    assert.equal(sent.receivedUsers, 1);
    assertFreshNotice(await aliceInbox.waitForText('still here'), { text: 'still here', id: sent.id });
    assert.deepEqual(bobInbox.texts(), []);
  } finally {
    client.close();
  }
  // Closing the socket ends what was left on it.
  await stack.waitForSubscribers(alice, 0);
});
