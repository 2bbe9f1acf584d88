// Three sub instances behind a real nginx (deploy/nginx/sub.conf), and
// graphql-ws clients that know only nginx's address, with their default
// retry and the README's resume recipe (the last cursor kept in the
// subscription's variables). First one instance is drained (SIGTERM:
// /readyz 503 "draining", then 1001 spread over DRAIN_WINDOW), then another
// is SIGKILLed; each time its clients reconnect through nginx to an
// instance that is still there, by themselves, and resume: every notice
// published meanwhile arrives exactly once, in order.
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { createNotificationsClient } from '../clients/graphql-ws.mjs';
import { Inbox, uniqueUser, useStack, waitUntil } from '../lib/harness.mjs';

// COUNT_TTL=3s: the killed instance's live counts expire within seconds,
// so that receivedUsers is exact again afterwards.
const stack = useStack({ before, after }, {
  name: 'load-balancer',
  subEnv: { DRAIN_DELAY: '1s', DRAIN_WINDOW: '2s', SHUTDOWN_TIMEOUT: '10s', COUNT_TTL: '3s' },
});

const RESUMABLE = /* GraphQL */ `
  subscription OnNotification($userName: String!, $after: String) {
    onNotificationReceived(userName: $userName, after: $after) { id text timestamp scope cursor }
  }
`;

async function connections(url) {
  const res = await fetch(`${url}/metrics`);
  const line = (await res.text()).split('\n').find((l) => l.startsWith('oshirase_sub_connections '));
  assert.ok(line, `${url}/metrics has oshirase_sub_connections`);
  return Number(line.split(' ')[1]);
}

test('graphql-ws clients behind nginx move by themselves when an instance drains or dies, and lose nothing', async (t) => {
  const a = { service: stack.sub, url: stack.subUrl };
  const b = await stack.startAnotherSub();
  const c = await stack.startAnotherSub();
  const lb = await stack.startNginx([a.url, b.url, c.url]);
  const user = uniqueUser('lb');
  const N = 6;
  const clients = [];
  try {
    for (let i = 0; i < N; i++) {
      const cl = { name: `client ${i}`, closes: [], connects: 0, completed: false };
      cl.inbox = new Inbox(cl.name);
      cl.client = createNotificationsClient(lb.wsUrl, {
        retryAttempts: Infinity,
        on: {
          connected: () => { cl.connects++; },
          closed: (event) => cl.closes.push({ code: event.code, at: Date.now() }),
        },
      });
      cl.payload = { query: RESUMABLE, variables: { userName: user, after: null } };
      cl.client.subscribe(cl.payload, {
        next: ({ data, errors }) => {
          if (errors) return cl.inbox.fail(errors);
          cl.payload.variables.after = data.onNotificationReceived.cursor;
          cl.inbox.push(data.onNotificationReceived);
        },
        error: cl.inbox.fail,
        complete: () => { cl.completed = true; },
      });
      clients.push(cl);
      // One at a time, so that nginx (least_conn) spreads them.
      await waitUntil(() => cl.connects === 1, { timeout: 10_000, describe: () => `${cl.name} connected` });
    }
    await stack.waitForSubscribers(user, N);
    const spread = await Promise.all([a, b, c].map((s) => connections(s.url)));
    t.diagnostic(`connections per instance: ${JSON.stringify(spread)}`);
    assert.deepEqual(spread, [2, 2, 2], 'nginx spreads the clients over the three instances');

    const sent = [];
    let seq = 0;
    const sendSome = async (k) => {
      for (let i = 0; i < k; i++) {
        const text = `n-${seq++}`;
        await stack.send(user, text);
        sent.push(text);
        await delay(100);
      }
    };
    const exactly = async () => {
      for (const cl of clients) {
        await cl.inbox.waitForText(sent.at(-1), 30_000);
        assert.deepEqual(cl.inbox.texts(), sent, `${cl.name}: every notice exactly once, in order`);
        assert.deepEqual(cl.inbox.errors, [], `${cl.name}: no errors`);
        assert.equal(cl.completed, false, `${cl.name}: never completed`);
      }
    };

    // 1. A drains: not ready at once, its sockets closed with 1001 after
    // DRAIN_DELAY, its clients back through nginx on B and C.
    await sendSome(3);
    const drainStarted = Date.now();
    const drained = a.service.stop(15_000);
    await waitUntil(async () => {
      try {
        const res = await fetch(`${a.url}/readyz`);
        return res.status === 503 && (await res.text()).includes('draining');
      } catch { return false; }
    }, { timeout: 3_000, describe: () => 'the draining instance to answer /readyz 503 "draining"' });
    await sendSome(30); // about 3 s: through the delay and the window
    const exit = await drained;
    assert.equal(exit.code, 0, `A exits 0 after its drain, got ${JSON.stringify(exit)}`);
    await exactly();
    const movedByDrain = clients.filter((cl) => cl.closes.length > 0);
    assert.equal(movedByDrain.length, 2, 'A\'s two clients were closed');
    for (const cl of movedByDrain) {
      assert.equal(cl.closes[0].code, 1001, `${cl.name}: A closes with 1001`);
      assert.ok(cl.closes[0].at - drainStarted >= 900, `${cl.name}: closed ${cl.closes[0].at - drainStarted} ms after SIGTERM, before DRAIN_DELAY`);
      assert.equal(cl.connects, 2, `${cl.name}: reconnected once, by itself`);
    }
    assert.equal((await connections(b.url)) + (await connections(c.url)), N, 'all clients on B and C');
    await stack.waitForSubscribers(user, N);

    // 2. B dies (SIGKILL): nginx cuts its clients off; they come back
    // through nginx on C.
    const before = clients.map((cl) => cl.connects);
    await sendSome(3);
    const onB = await connections(b.url);
    assert.ok(onB >= 1, `B holds clients (${onB})`);
    await b.service.kill();
    await sendSome(20);
    await exactly();
    const movedByKill = clients.filter((cl, i) => cl.connects > before[i]);
    assert.equal(movedByKill.length, onB, `B's ${onB} clients reconnected`);
    assert.equal(await connections(c.url), N, 'all clients on C');
    await stack.waitForSubscribers(user, N, { timeout: 20_000 }); // B's counts expired
    t.diagnostic(`close codes: ${JSON.stringify(clients.map((cl) => cl.closes.map((x) => x.code)))}`);
  } finally {
    await Promise.all(clients.map((cl) => cl.client.dispose()));
  }
});
