// Apollo Client 4 with GraphQLWsLink (graphql-ws underneath); the mutation
// goes through Apollo's HttpLink to pub.
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { ApolloClient, HttpLink, InMemoryCache } from '@apollo/client';
import { PersistedQueryLink } from '@apollo/client/link/persisted-queries';
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

// Automatic persisted queries with Apollo's own PersistedQueryLink: the
// first mutation sends only its document's hash, pub answers
// PERSISTED_QUERY_NOT_FOUND, the link sends the document with the hash;
// from then on the hash alone is enough. Every mutation is delivered once.
test('automatic persisted queries: the hash alone once pub has seen the document', async () => {
  const user = uniqueUser('apq');
  const bodies = [];
  const recording = async (url, init) => {
    bodies.push(JSON.parse(init.body));
    return fetch(url, init);
  };
  const sha256 = (q) => createHash('sha256').update(q).digest('hex');
  const publisher = new ApolloClient({
    link: new PersistedQueryLink({ sha256 }).concat(new HttpLink({ uri: `${stack.pubUrl}/query`, fetch: recording })),
    cache: new InMemoryCache(),
  });
  const listener = createNotificationsClient({ pubUrl: `${stack.pubUrl}/query`, subUrl: stack.subWsUrl });
  const inbox = new Inbox(user);
  try {
    const unsubscribe = subscribeToNotices(listener, user, inbox.push, inbox.fail);
    await stack.waitForSubscribers(user, 1);

    const texts = ['persisted one', 'persisted two', 'persisted three'];
    for (const text of texts) {
      const sent = await sendNotification(publisher, user, text);
      assert.equal(sent.receivedUsers, 1);
      assertFreshNotice(await inbox.waitForText(text), { text, id: sent.id });
    }
    const hash = bodies[0].extensions?.persistedQuery?.sha256Hash;
    assert.match(hash ?? '', /^[0-9a-f]{64}$/);
    assert.deepEqual(
      bodies.map((b) => [b.query === undefined ? 'hash only' : 'document', b.extensions.persistedQuery.sha256Hash === hash]),
      [['hash only', true], ['document', true], ['hash only', true], ['hash only', true]],
      'one miss, the document once, then hashes only',
    );
    unsubscribe();
    assert.deepEqual(inbox.texts(), texts);
    assert.equal(inbox.errors.length, 0, describeErrors(inbox.errors));
  } finally {
    publisher.stop();
    listener.stop();
  }
});
