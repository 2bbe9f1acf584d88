// graphql-ws (subprotocol graphql-transport-ws), the client that Apollo
// Client and urql use underneath.
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createNotificationsClient, subscribeToNotices } from '../clients/graphql-ws.mjs';
import { Inbox, describeErrors, uniqueUser, useStack } from '../lib/harness.mjs';
import { assertFreshNotice } from '../lib/expect.mjs';

const stack = useStack({ before, after }, { name: 'graphql-ws' });

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

    unsubscribe();
    await stack.waitForSubscribers(user, 0);
    assert.deepEqual(inbox.texts(), [text]);
    assert.equal(inbox.errors.length, 0, describeErrors(inbox.errors));
  } finally {
    await client.dispose();
  }
});

test('completing one of two subscriptions on one connection ends only that one', async () => {
  const [alice, bob] = [uniqueUser('alice'), uniqueUser('bob')];
  const client = createNotificationsClient(stack.subWsUrl);
  const aliceInbox = new Inbox(alice);
  const bobInbox = new Inbox(bob);
  try {
    subscribeToNotices(client, alice, aliceInbox.push, aliceInbox.fail);
    const unsubscribeBob = subscribeToNotices(client, bob, bobInbox.push, bobInbox.fail);
    await stack.waitForSubscribers(alice, 1);
    await stack.waitForSubscribers(bob, 1);

    unsubscribeBob(); // sends "complete"; the socket stays open for alice
    await stack.waitForSubscribers(bob, 0);

    const sent = await stack.send(alice, 'still here');
    assert.equal(sent.receivedUsers, 1);
    assertFreshNotice(await aliceInbox.waitForText('still here'), { text: 'still here', id: sent.id });
    assert.deepEqual(bobInbox.texts(), []);
  } finally {
    await client.dispose();
  }
  await stack.waitForSubscribers(alice, 0);
});

test('an invalid subscription gets a GraphQL error, not a dropped connection', async () => {
  const client = createNotificationsClient(stack.subWsUrl);
  const closes = [];
  client.on('closed', (event) => closes.push(event.code));
  try {
    const errors = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no error within 5 s')), 5_000);
      client.subscribe(
        { query: 'subscription { onNotificationReceived { id text } }' }, // userName missing
        {
          next: (value) => { clearTimeout(timer); reject(new Error(`unexpected result ${JSON.stringify(value)}`)); },
          error: (err) => { clearTimeout(timer); resolve(err); },
          complete: () => { clearTimeout(timer); reject(new Error('completed without an error')); },
        },
      );
    });
    // graphql-transport-ws answers a failed subscribe with an "error"
    // message whose payload is a list of GraphQL errors.
    assert.ok(Array.isArray(errors), `expected a list of GraphQL errors, got ${describeErrors([errors])}`);
    assert.match(errors[0].message, /userName/);
    // The client itself closes the idle socket with 1000 afterwards; the
    // server must not have closed it with an error code.
    assert.deepEqual(closes.filter((code) => code !== 1000), [], 'the server should not close the connection');
  } finally {
    await client.dispose();
  }
});
