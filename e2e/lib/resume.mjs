// A resuming client's connection cut from the server's side while notices
// go out, for the Apollo and urql resume tests.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describeErrors, waitUntil } from './harness.mjs';

/**
 * Retry settings for a cut that lasts a few seconds: graphql-ws's default
 * (5 attempts, backing off) would give up during a slow restart.
 */
export function retryingWsOptions(onConnected) {
  return {
    retryAttempts: 50,
    shouldRetry: () => true,
    retryWait: () => sleep(200),
    on: { connected: onConnected },
  };
}

/**
 * The inbox's subscription to user is live. Cuts it twice from the server's
 * side — sub stopped (SIGTERM: every WebSocket closed with 1001) and sub
 * killed (SIGKILL: the sockets just break) — while a sender publishes to
 * user before, during and after each cut, and sub comes back on the same
 * port. The client reconnects by itself; the inbox must then hold every
 * notice sent, exactly once, in order, and no error.
 */
export async function cutTwiceAndResume(stack, { user, inbox, connects }) {
  const sent = [];
  const send = async (text) => {
    await stack.send(user, text);
    sent.push(text);
  };
  await send('before');
  await inbox.waitForText('before');
  assert.ok(inbox.notices[0].cursor, 'a notice carries its cursor');

  for (const signal of ['SIGTERM', 'SIGKILL']) {
    let sending = true;
    const sender = (async () => {
      for (let i = 0; sending; i++) {
        await send(`${signal} ${i}`);
        await sleep(10); // paces the sender; nothing waits on it
      }
    })();
    const connected = connects();
    await waitUntil(() => sent.length >= 5, { describe: () => 'notices sent before the cut' });
    if (signal === 'SIGTERM') {
      await stack.sub.stop();
    } else {
      stack.sub.stopping = true;
      stack.sub.child.kill('SIGKILL');
      await stack.sub.exited;
    }
    const whileDown = sent.length;
    await waitUntil(() => sent.length >= whileDown + 10, { describe: () => 'notices sent while sub is down' });
    stack.sub.restarts++;
    stack.sub.start();
    await stack.waitReady(stack.sub, stack.subUrl);
    await waitUntil(() => connects() > connected, {
      timeout: 30_000,
      describe: () => `the client to reconnect after ${signal} (connected ${connects()} times)`,
    });
    const back = sent.length;
    await waitUntil(() => sent.length >= back + 5, { describe: () => 'notices sent after the reconnect' });
    sending = false;
    await sender;
    await send(`${signal} last`);
    await inbox.waitForText(`${signal} last`, 30_000);
  }
  assert.deepEqual(inbox.errors, [], describeErrors(inbox.errors));
  const got = inbox.texts();
  const missing = sent.filter((t) => !got.includes(t));
  const twice = got.filter((t, i) => got.indexOf(t) !== i);
  assert.deepEqual({ missing, twice }, { missing: [], twice: [] }, `${got.length} received of ${sent.length} sent`);
  assert.deepEqual(got, sent, 'in the order sent');
  return sent.length;
}
