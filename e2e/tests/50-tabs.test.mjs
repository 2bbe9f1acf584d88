// Several tabs: every subscription of the recipient gets exactly one copy,
// nobody else gets any.
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as graphqlWs from '../clients/graphql-ws.mjs';
import * as legacy from '../clients/subscriptions-transport-ws.mjs';
import { Inbox, describeErrors, uniqueUser, useStack } from '../lib/harness.mjs';
import { assertFreshNotice } from '../lib/expect.mjs';

const stack = useStack({ before, after }, { name: 'tabs' });

// A tab is its own client, so its own WebSocket connection.
function openTab(lib, user, name) {
  const client = lib.createNotificationsClient(stack.subWsUrl);
  const inbox = new Inbox(name);
  lib.subscribeToNotices(client, user, inbox.push, inbox.fail);
  const close = async () => (lib === legacy ? client.close() : client.dispose());
  return { inbox, close };
}

// Notices to one subscription arrive in order, so once a later notice has
// arrived, any duplicate of an earlier one would have arrived before it.
// That lets "exactly one copy" be checked without sleeping.
async function fence(user, tabs) {
  const text = `fence ${Math.random()}`;
  await stack.send(user, text);
  await Promise.all(tabs.map((tab) => tab.inbox.waitForText(text)));
}

async function twoTabsOfBobOneOfAlice(libs) {
  const [bob, alice] = [uniqueUser('bob'), uniqueUser('alice')];
  const bob1 = openTab(libs[0], bob, 'bob tab 1');
  const bob2 = openTab(libs[1], bob, 'bob tab 2');
  const alice1 = openTab(libs[2], alice, 'alice tab');
  const tabs = [bob1, bob2, alice1];
  try {
    await stack.waitForSubscribers(bob, 2);
    await stack.waitForSubscribers(alice, 1);

    const text = 'bob: your report is ready';
    const sent = await stack.send(bob, text);
    assert.equal(sent.receivedUsers, 2);
    for (const tab of [bob1, bob2]) assertFreshNotice(await tab.inbox.waitForText(text), { text, id: sent.id });
    await fence(bob, [bob1, bob2]);
    await fence(alice, [alice1]);
    assert.equal(bob1.inbox.count(text), 1, `bob tab 1 got ${JSON.stringify(bob1.inbox.texts())}`);
    assert.equal(bob2.inbox.count(text), 1, `bob tab 2 got ${JSON.stringify(bob2.inbox.texts())}`);
    assert.equal(alice1.inbox.count(text), 0, `alice got ${JSON.stringify(alice1.inbox.texts())}`);

    await bob1.close();
    await stack.waitForSubscribers(bob, 1);
    const second = await stack.send(bob, 'bob: one tab left');
    assert.equal(second.receivedUsers, 1);
    await bob2.inbox.waitForText('bob: one tab left');
    await fence(bob, [bob2]);
    assert.equal(bob2.inbox.count('bob: one tab left'), 1);
    assert.equal(bob1.inbox.count('bob: one tab left'), 0);

    for (const tab of tabs) assert.equal(tab.inbox.errors.length, 0, `${tab.inbox.name}: ${describeErrors(tab.inbox.errors)}`);
  } finally {
    await Promise.all(tabs.map((tab) => tab.close()));
  }
  await stack.waitForSubscribers(bob, 0);
  await stack.waitForSubscribers(alice, 0);
}

test('two tabs of bob and one of alice (graphql-ws)', () => twoTabsOfBobOneOfAlice([graphqlWs, graphqlWs, graphqlWs]));

test('two tabs of bob on different subprotocols and one of alice', () => twoTabsOfBobOneOfAlice([graphqlWs, legacy, legacy]));
