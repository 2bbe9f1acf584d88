// A deploy: sub instance A gets SIGTERM while a second instance B runs (a load
// balancer would send reconnects there; here each client's url function
// does; 66-load-balancer.test.mjs runs the same behind a real nginx). A
// drains: /readyz answers 503 "draining" at once, and after DRAIN_DELAY it
// closes each WebSocket with 1001 and ends each SSE stream, spread over
// DRAIN_WINDOW. Every client must come back by itself and resubscribe on B;
// A never completes a subscription the client did not end — a completed
// subscription is finished for graphql-ws and graphql-sse, which then do not
// resubscribe it.
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createNotificationsClient } from '../clients/graphql-ws.mjs';
import { createNotificationsClient as createSSEClient } from '../clients/graphql-sse.mjs';
import { Inbox, describeErrors, uniqueUser, useStack, waitUntil } from '../lib/harness.mjs';
import { assertFreshNotice } from '../lib/expect.mjs';

const DRAIN_DELAY_MS = 1000;
const DRAIN_WINDOW_MS = 2000;
const stack = useStack({ before, after }, {
  name: 'deploy',
  subEnv: { DRAIN_DELAY: `${DRAIN_DELAY_MS}ms`, DRAIN_WINDOW: `${DRAIN_WINDOW_MS}ms`, SHUTDOWN_TIMEOUT: '10s' },
});

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
          on: { closed: (event) => { c.closes.push(`${event.code} ${event.reason}`); c.closedAt ??= Date.now(); } },
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
    const signalled = Date.now();
    const stopped = stack.sub.stop(15_000);
    await waitUntil(async () => {
      try {
        const res = await fetch(`${stack.subUrl}/readyz`);
        return res.status === 503 && (await res.text()).includes('draining');
      } catch { return false; }
    }, { timeout: 3_000, describe: () => 'A to answer /readyz 503 "draining" at once' });
    const exit = await stopped;
    assert.equal(exit.code, 0, `A should exit 0 on SIGTERM, got ${JSON.stringify(exit)}`);
    // Closed after DRAIN_DELAY, not all at once: six WebSockets among nine
    // connections closed one by one over DRAIN_WINDOW span at least a third of it.
    const closedAt = clients.filter((c) => !c.sse).map((c) => c.closedAt - signalled).sort((x, y) => x - y);
    t.diagnostic(`WebSocket closes, ms after SIGTERM: ${JSON.stringify(closedAt)}`);
    assert.ok(closedAt[0] >= DRAIN_DELAY_MS * 0.9, `first close ${closedAt[0]} ms after SIGTERM, before DRAIN_DELAY`);
    assert.ok(closedAt.at(-1) - closedAt[0] >= DRAIN_WINDOW_MS / 3, `closes ${JSON.stringify(closedAt)} ms not spread over DRAIN_WINDOW`);

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
