// graphql-sse ("distinct connections" mode) and plain curl against sub's
// /graphql with Accept: text/event-stream: the same contract as over
// WebSocket, and a stream that ends releases its subscription.
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { createNotificationsClient, subscribeToNotices } from '../clients/graphql-sse.mjs';
import { E2E_DIR, Inbox, describeErrors, uniqueUser, useStack, waitUntil } from '../lib/harness.mjs';
import { assertFreshNotice } from '../lib/expect.mjs';

const stack = useStack({ before, after }, { name: 'sse', subEnv: { KEEPALIVE_INTERVAL: '300ms' } });
const sseUrl = () => `${stack.subUrl}/graphql`;

async function liveSubscriptions() {
  const text = await (await fetch(`${stack.subUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('oshirase_sub_subscriptions '));
  return Number(line.split(' ')[1]);
}

test('receives a notice sent through pub, and unsubscribing releases the subscription on the server', async () => {
  const user = uniqueUser('ivan');
  const client = createNotificationsClient(sseUrl());
  const inbox = new Inbox(user);
  try {
    const unsubscribe = subscribeToNotices(client, user, inbox.push, inbox.fail);
    await stack.waitForSubscribers(user, 1);

    const text = 'Your parcel is out for delivery';
    const sent = await stack.send(user, text);
    assert.equal(sent.receivedUsers, 1);
    assertFreshNotice(await inbox.waitForText(text), { text, id: sent.id });

    unsubscribe();
    await stack.waitForSubscribers(user, 0);
    await waitUntil(async () => (await liveSubscriptions()) === 0, { describe: () => 'oshirase_sub_subscriptions to be 0' });
    assert.deepEqual(inbox.texts(), [text]);
    assert.equal(inbox.errors.length, 0, describeErrors(inbox.errors));
  } finally {
    client.dispose();
  }
});

test('two subscriptions of one user get one copy each; another user gets none', async () => {
  const [bob, alice] = [uniqueUser('bob'), uniqueUser('alice')];
  const client = createNotificationsClient(sseUrl());
  const tabs = [new Inbox('bob 1'), new Inbox('bob 2'), new Inbox('alice')];
  try {
    subscribeToNotices(client, bob, tabs[0].push, tabs[0].fail);
    subscribeToNotices(client, bob, tabs[1].push, tabs[1].fail);
    subscribeToNotices(client, alice, tabs[2].push, tabs[2].fail);
    await stack.waitForSubscribers(bob, 2);
    await stack.waitForSubscribers(alice, 1);

    const sent = await stack.send(bob, 'for bob');
    assert.equal(sent.receivedUsers, 2);
    // Notices to one subscription arrive in order: once a later one is in,
    // a duplicate of the earlier one would be too.
    await stack.send(bob, 'bob fence');
    await stack.send(alice, 'alice fence');
    await Promise.all([tabs[0].waitForText('bob fence'), tabs[1].waitForText('bob fence'), tabs[2].waitForText('alice fence')]);
    assert.deepEqual(tabs[0].texts(), ['for bob', 'bob fence']);
    assert.deepEqual(tabs[1].texts(), ['for bob', 'bob fence']);
    assert.deepEqual(tabs[2].texts(), ['alice fence']);
  } finally {
    client.dispose();
  }
  await stack.waitForSubscribers(bob, 0);
});

test('plain curl (clients/curl-sse.sh) streams notices and keep-alive comments', async () => {
  const user = uniqueUser('judy');
  const curl = spawn(path.join(E2E_DIR, 'clients', 'curl-sse.sh'), [sseUrl(), user], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  curl.stdout.on('data', (d) => { out += d; });
  curl.stderr.on('data', (d) => { out += d; });
  try {
    await stack.waitForSubscribers(user, 1);
    const sent = await stack.send(user, 'hello curl');
    await waitUntil(() => out.includes('hello curl'), { describe: () => `curl output to show the notice:\n${out}` });
    await waitUntil(() => out.includes(': ping'), { describe: () => `a keep-alive comment:\n${out}` });
    const event = out.split('\n\n').find((block) => block.includes('hello curl'));
    assert.match(event, /^event: next\ndata: /m, event);
    const payload = JSON.parse(event.split('data: ')[1]);
    assert.equal(payload.data.onNotificationReceived.id, sent.id);
  } finally {
    curl.kill('SIGINT');
  }
  await stack.waitForSubscribers(user, 0);
});
