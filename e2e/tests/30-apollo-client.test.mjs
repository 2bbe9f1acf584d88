// Apollo Client 4 with GraphQLWsLink (graphql-ws underneath); the mutation
// goes through Apollo's HttpLink to pub.
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createNotificationsClient, sendNotification, subscribeToNotices } from '../clients/apollo.mjs';
import { Inbox, describeErrors, uniqueUser, useStack } from '../lib/harness.mjs';
import { assertFreshNotice } from '../lib/expect.mjs';

const stack = useStack({ before, after }, { name: 'apollo-client' });

test('receives a notice sent through pub, and unsubscribing ends the subscription on the server', async () => {
  const user = uniqueUser('alice');
  const client = createNotificationsClient({ pubUrl: `${stack.pubUrl}/query`, subUrl: stack.subWsUrl });
  const inbox = new Inbox(user);
  try {
    const unsubscribe = subscribeToNotices(client, user, inbox.push, inbox.fail);
    await stack.waitForSubscribers(user, 1);

    const text = 'Your order has shipped';
    const sent = await sendNotification(client, user, text);
    assert.equal(sent.receivedUsers, 1);
    assertFreshNotice(await inbox.waitForText(text), { text, id: sent.id });

    unsubscribe();
    await stack.waitForSubscribers(user, 0);
    assert.deepEqual(inbox.texts(), [text]);
    assert.equal(inbox.errors.length, 0, describeErrors(inbox.errors));
  } finally {
    client.stop();
  }
});
