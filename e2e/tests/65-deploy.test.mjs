// A deploy: sub instance A gets SIGTERM while a second instance B runs (a load
// balancer would send reconnects there; here each client's url function
// does). Every client must come back by itself and resubscribe on B: A closes
// each WebSocket with 1001 and ends each SSE stream, and never completes a
// subscription the client did not end — a completed subscription is finished
// for graphql-ws and graphql-sse, which then do not resubscribe it.
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createNotificationsClient } from '../clients/graphql-ws.mjs';
import { createNotificationsClient as createSSEClient } from '../clients/graphql-sse.mjs';
import { Inbox, describeErrors, uniqueUser, useStack } from '../lib/harness.mjs';
import { assertFreshNotice } from '../lib/expect.mjs';

const stack = useStack({ before, after }, { name: 'deploy' });

const ON_NOTIFICATION = `subscription($userName: String!) {
  onNotificationReceived(userName: $userName) { id text timestamp scope }
}`;

test('on SIGTERM every graphql-ws and graphql-sse client resubscribes on another instance by itself', async (t) => {
  const b = await stack.startAnotherSub();
  const user = uniqueUser('deploy');
  const WS = 6;
  const N = WS + 3; // and three graphql-sse clients
  let target = stack.subWsUrl; // instance A until it goes
  const httpOf = (wsUrl) => wsUrl.replace(/^ws:/, 'http:');
  const clients = [];
  try {
    for (let i = 0; i < N; i++) {
      const sse = i >= WS;
      const c = { name: `${sse ? 'graphql-sse' : 'graphql-ws'} client ${i}`, sse, closes: [], urls: [], completed: false, errors: [] };
      c.inbox = new Inbox(c.name);
      const url = () => { const u = sse ? httpOf(target) : target; c.urls.push(u); return u; };
      c.client = sse
        ? createSSEClient(url, { retryAttempts: 10 })
        : createNotificationsClient(url, {
          retryAttempts: 10,
          on: { closed: (event) => c.closes.push(`${event.code} ${event.reason}`) },
        });
      c.client.subscribe({ query: ON_NOTIFICATION, variables: { userName: user } }, {
        next: ({ data, errors }) => (errors ? c.errors.push(errors) : c.inbox.push(data.onNotificationReceived)),
        error: (err) => c.errors.push(err),
        // Only the client ends its subscription: the server never completes it.
        complete: () => { c.completed = true; },
      });
      clients.push(c);
    }
    await stack.waitForSubscribers(user, N);
    const first = await stack.send(user, 'before the deploy');
    assert.equal(first.receivedUsers, N);
    for (const c of clients) assertFreshNotice(await c.inbox.waitForText('before the deploy'), { text: 'before the deploy', id: first.id });

    target = b.wsUrl;
    const exit = await stack.sub.stop();
    assert.equal(exit.code, 0, `A should exit 0 on SIGTERM, got ${JSON.stringify(exit)}`);

    // All N back, on B only (A removed its counts when it stopped).
    await stack.waitForSubscribers(user, N, { timeout: 30_000 });
    const later = await stack.send(user, 'after the deploy');
    assert.equal(later.receivedUsers, N);
    for (const c of clients) {
      assertFreshNotice(await c.inbox.waitForText('after the deploy'), { text: 'after the deploy', id: later.id });
      assert.equal(c.completed, false, `${c.name}: its subscription was completed`);
      assert.deepEqual(c.errors, [], `${c.name}: errors ${describeErrors(c.errors)}`);
      if (!c.sse) assert.match(c.closes[0] ?? '', /^1001 /, `${c.name}: A should close with 1001, saw ${JSON.stringify(c.closes)}`);
      assert.equal(c.urls.at(-1), c.sse ? httpOf(b.wsUrl) : b.wsUrl, `${c.name}: last connected to ${c.urls.at(-1)}`);
      assert.deepEqual(c.inbox.texts(), ['before the deploy', 'after the deploy'], c.name);
    }
    t.diagnostic(`WebSocket close events: ${JSON.stringify(clients.filter((c) => !c.sse).map((c) => c.closes))}`);
  } finally {
    await Promise.all(clients.map((c) => c.client.dispose()));
  }
});
