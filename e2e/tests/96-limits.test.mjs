// The limits as the real graphql-ws client meets them (README "Limits"):
// over MAX_CONNECTIONS_PER_USER the server closes with 4429, which
// graphql-ws treats as fatal — it reports the close and does not retry;
// over MAX_SUBSCRIPTIONS_PER_CONNECTION only that subscription gets an
// error; a refused upgrade (MAX_CONNECTIONS, 503) is not retried by
// default, and is, until a slot is free, with shouldRetry.
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createNotificationsClient, subscribeToNotices } from '../clients/graphql-ws.mjs';
import { Inbox, describeErrors, useStack, waitUntil } from '../lib/harness.mjs';
import { userToken } from '../lib/jwt.mjs';

const SECRET = 'e2e-js-secret-that-is-long-enough-for-hs256';
const API_KEY = 'acme-publisher-key-0123456789';
const jwtEnv = { AUTH_MODE: 'jwt', JWT_SECRET: SECRET, ALLOWED_ORIGINS: 'http://localhost:3000' };

const stack = useStack({ before, after }, {
  name: 'limits',
  pubEnv: { ...jwtEnv, PUBLISHER_API_KEYS: `${API_KEY}:acme` },
  subEnv: { ...jwtEnv, MAX_CONNECTIONS: '2', MAX_CONNECTIONS_PER_USER: '1', MAX_SUBSCRIPTIONS_PER_CONNECTION: '1' },
  pubAuthorization: `Bearer ${API_KEY}`,
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * A graphql-ws client for user that counts its connection attempts and
 * its retry waits. graphql-ws decides at once whether to retry: it either
 * waits (retryWait) and connects again, or reports the error to the
 * subscription's sink — so a sink error with no retry wait counted means
 * it gave up, without a fixed sleep to prove it.
 */
function clientFor(user, options = {}) {
  const token = userToken(SECRET, { sub: user, tenant: 'acme' });
  const attempts = { connecting: 0, retryWaits: 0, closed: [] };
  const client = createNotificationsClient(stack.subWsUrl, {
    connectionParams: { Authorization: `Bearer ${token}` },
    on: {
      connecting: () => { attempts.connecting++; },
      closed: (e) => { attempts.closed.push(e?.code); },
    },
    retryWait: async () => { attempts.retryWaits++; await sleep(100); },
    ...options,
  });
  return { client, attempts };
}

test('a user over MAX_CONNECTIONS_PER_USER gets 4429, and graphql-ws does not retry it', async () => {
  const first = clientFor('alice');
  const second = clientFor('alice', { retryAttempts: 5 });
  const inbox = new Inbox('alice-1');
  const refused = new Inbox('alice-2');
  try {
    subscribeToNotices(first.client, 'alice', inbox.push, inbox.fail);
    await stack.waitForSubscribers('alice', 1);

    subscribeToNotices(second.client, 'alice', refused.push, refused.fail);
    await waitUntil(() => refused.errors.length > 0, { describe: () => "the second tab's error" });
    assert.match(describeErrors(refused.errors), /close 4429 Too many requests/);
    assert.equal(second.attempts.retryWaits, 0, 'graphql-ws meant to retry a 4429');
    assert.equal(second.attempts.connecting, 1, 'graphql-ws retried a 4429');

    const sent = await stack.send('alice', 'first tab only');
    assert.equal(sent.receivedUsers, 1);
    await inbox.waitForText('first tab only');
    assert.equal(inbox.errors.length, 0, describeErrors(inbox.errors));
  } finally {
    await second.client.dispose();
    await first.client.dispose();
  }
  await stack.waitForSubscribers('alice', 0);
});

test('a subscription over MAX_SUBSCRIPTIONS_PER_CONNECTION gets TOO_MANY_SUBSCRIPTIONS; the first goes on', async () => {
  const { client } = clientFor('bob');
  const inbox = new Inbox('bob-1');
  const extra = new Inbox('bob-2');
  try {
    subscribeToNotices(client, 'bob', inbox.push, inbox.fail);
    await stack.waitForSubscribers('bob', 1);
    subscribeToNotices(client, 'bob', extra.push, extra.fail);
    await waitUntil(() => extra.errors.length > 0, { describe: () => "the second subscription's error" });
    assert.match(JSON.stringify(extra.errors), /TOO_MANY_SUBSCRIPTIONS/);
    const sent = await stack.send('bob', 'one subscription');
    assert.equal(sent.receivedUsers, 1);
    await inbox.waitForText('one subscription');
    assert.equal(inbox.errors.length, 0, describeErrors(inbox.errors));
  } finally {
    await client.dispose();
  }
  await stack.waitForSubscribers('bob', 0);
});

// graphql-ws sees a refused upgrade as the socket's "error" event (no
// close code), which its default shouldRetry (isLikeCloseEvent) does not
// retry: the README's recipe passes shouldRetry: () => true.
test('a client refused at MAX_CONNECTIONS (503): graphql-ws gives up by default, and retries until a slot is free with shouldRetry', async () => {
  const a = clientFor('carol');
  const b = clientFor('dave');
  const plain = clientFor('frank', { retryAttempts: 5 });
  const c = clientFor('erin', { retryAttempts: 50, shouldRetry: () => true });
  const gaveUp = new Inbox('frank');
  const inbox = new Inbox('erin');
  try {
    subscribeToNotices(a.client, 'carol', () => {}, () => {});
    subscribeToNotices(b.client, 'dave', () => {}, () => {});
    await stack.waitForSubscribers('carol', 1);
    await stack.waitForSubscribers('dave', 1);

    subscribeToNotices(plain.client, 'frank', gaveUp.push, gaveUp.fail);
    await waitUntil(() => gaveUp.errors.length > 0, { describe: () => "frank's error" });
    assert.equal(plain.attempts.retryWaits, 0, 'graphql-ws meant to retry a refused upgrade without shouldRetry');
    assert.equal(plain.attempts.connecting, 1, 'graphql-ws retried a refused upgrade without shouldRetry');

    subscribeToNotices(c.client, 'erin', inbox.push, inbox.fail);
    await waitUntil(() => c.attempts.connecting >= 2, { describe: () => `erin retrying while sub is full: ${JSON.stringify(c.attempts)}` });
    await a.client.dispose();
    await stack.waitForSubscribers('erin', 1, { timeout: 20_000 });
    const sent = await stack.send('erin', 'got in');
    assert.equal(sent.receivedUsers, 1);
    await inbox.waitForText('got in');
    assert.equal(inbox.errors.length, 0, describeErrors(inbox.errors));
  } finally {
    await Promise.all([a.client.dispose(), b.client.dispose(), plain.client.dispose(), c.client.dispose()]);
  }
});
