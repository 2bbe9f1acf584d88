// AUTH_MODE=jwt: Apollo Client sends the user's token in connectionParams
// and receives the notices meant for it — personal, store, company and
// public ones, each with the scope it was sent to; with another user's
// name it gets nothing.
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createNotificationsClient, subscribeToNotices } from '../clients/apollo.mjs';
import { Inbox, describeErrors, useStack, waitUntil } from '../lib/harness.mjs';
import { assertFreshNotice } from '../lib/expect.mjs';
import { userToken } from '../lib/jwt.mjs';

const SECRET = 'e2e-js-secret-that-is-long-enough-for-hs256';
const API_KEY = 'acme-publisher-key-0123456789';
const PLATFORM_KEY = 'platform-publisher-key-0123456789';
const jwtEnv = { AUTH_MODE: 'jwt', JWT_SECRET: SECRET, ALLOWED_ORIGINS: 'http://localhost:3000' };

const stack = useStack({ before, after }, {
  name: 'jwt-apollo',
  pubEnv: { ...jwtEnv, PUBLISHER_API_KEYS: `${API_KEY}:acme,${PLATFORM_KEY}:*` },
  subEnv: jwtEnv,
  pubAuthorization: `Bearer ${API_KEY}`,
});

test('Apollo Client with a token in connectionParams receives its notices', async () => {
  const token = userToken(SECRET, { sub: 'bob', tenant: 'acme' });
  const client = createNotificationsClient({ pubUrl: `${stack.pubUrl}/query`, subUrl: stack.subWsUrl, token });
  const inbox = new Inbox('bob');
  try {
    const unsubscribe = subscribeToNotices(client, 'bob', inbox.push, inbox.fail);
    await stack.waitForSubscribers('bob', 1);
    const text = 'Signed-in notice';
    const sent = await stack.send('bob', text);
    assert.equal(sent.receivedUsers, 1);
    assertFreshNotice(await inbox.waitForText(text), { text, id: sent.id });
    unsubscribe();
    await stack.waitForSubscribers('bob', 0);
    assert.equal(inbox.errors.length, 0, describeErrors(inbox.errors));
  } finally {
    client.stop();
  }
});

test("subscribing under another user's name is refused", async () => {
  const token = userToken(SECRET, { sub: 'mallory', tenant: 'acme' });
  const client = createNotificationsClient({ pubUrl: `${stack.pubUrl}/query`, subUrl: stack.subWsUrl, token });
  const inbox = new Inbox('bob');
  try {
    subscribeToNotices(client, 'bob', inbox.push, inbox.fail);
    await waitUntil(() => inbox.errors.length > 0, { describe: () => 'an error for the foreign subscription' });
    assert.match(describeErrors(inbox.errors), /userName must be the token's own user/);
    const sent = await stack.send('bob', 'not for mallory');
    assert.equal(sent.receivedUsers, 0);
  } finally {
    client.stop();
  }
});

/** Calls pub's publish(input) with key; returns { receivedUsers, id }. */
async function publish(key, input) {
  const res = await fetch(`${stack.pubUrl}/query`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: JSON.stringify({
      query: 'mutation($in: PublishInput!) { publish(input: $in) { receivedUsers id } }',
      variables: { in: input },
    }),
    signal: AbortSignal.timeout(5_000),
  });
  const json = await res.json();
  assert.equal(res.status, 200, JSON.stringify(json));
  assert.equal(json.errors, undefined, JSON.stringify(json.errors));
  return json.data.publish;
}

test('one subscription carries personal, store, company and public notices; scope says which', async () => {
  const token = userToken(SECRET, { sub: 'carol', tenant: 'acme', store: 's1' });
  const client = createNotificationsClient({ pubUrl: `${stack.pubUrl}/query`, subUrl: stack.subWsUrl, token });
  const inbox = new Inbox('carol');
  try {
    const unsubscribe = subscribeToNotices(client, 'carol', inbox.push, inbox.fail);
    await stack.waitForSubscribers('carol', 1);
    const sends = [
      { scope: 'PERSON', key: API_KEY, input: { scope: 'PERSON', to: 'carol' } },
      { scope: 'STORE', key: API_KEY, input: { scope: 'STORE', to: 's1' } },
      { scope: 'COMPANY', key: API_KEY, input: { scope: 'COMPANY' } },
      { scope: 'PUBLIC', key: PLATFORM_KEY, input: { scope: 'PUBLIC' } },
    ];
    for (const { scope, key, input } of sends) {
      const text = `a ${scope.toLowerCase()} notice`;
      const sent = await publish(key, { ...input, text });
      assert.equal(sent.receivedUsers, 1, `${scope}: receivedUsers`);
      assertFreshNotice(await inbox.waitForText(text), { text, id: sent.id, scope });
    }
    // Another store's notice is not carol's.
    assert.equal((await publish(API_KEY, { scope: 'STORE', to: 's2', text: 'for s2' })).receivedUsers, 0);
    unsubscribe();
    await stack.waitForSubscribers('carol', 0);
    assert.deepEqual(inbox.texts(), sends.map(({ scope }) => `a ${scope.toLowerCase()} notice`));
    assert.equal(inbox.errors.length, 0, describeErrors(inbox.errors));
  } finally {
    client.stop();
  }
});
