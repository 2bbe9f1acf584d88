// Apollo Client (GraphQLWsLink) with the README's resume recipe
// (clients/resume.mjs under clients/apollo.mjs): sub stops, and later is
// killed, while notices go out; the client reconnects by itself and
// receives every notice sent, exactly once, in order.
import { before, after, test } from 'node:test';
import { createNotificationsClient, subscribeToNotices } from '../clients/apollo.mjs';
import { Inbox, uniqueUser, useStack } from '../lib/harness.mjs';
import { cutTwiceAndResume, retryingWsOptions } from '../lib/resume.mjs';

const stack = useStack({ before, after }, { name: 'resume-apollo' });

test('Apollo Client resumes after its last cursor across server-side disconnects, missing nothing', async () => {
  const user = uniqueUser('ruth');
  let connects = 0;
  const client = createNotificationsClient({
    pubUrl: `${stack.pubUrl}/query`,
    subUrl: stack.subWsUrl,
    wsOptions: retryingWsOptions(() => { connects++; }),
  });
  const inbox = new Inbox(user);
  const unsubscribe = subscribeToNotices(client, user, inbox.push, inbox.fail);
  try {
    await stack.waitForSubscribers(user, 1);
    const n = await cutTwiceAndResume(stack, { user, inbox, connects: () => connects });
    console.log(`# ${n} notices, each received once across two cuts`);
  } finally {
    unsubscribe();
    client.stop();
  }
});
