// urql: mutations go to pub over HTTP, subscriptions to sub over
// graphql-ws. In a browser leave out `webSocketImpl`.
import { Client, fetchExchange, gql, subscriptionExchange } from '@urql/core';
import { createClient as createWSClient } from 'graphql-ws';
import WebSocket from 'ws';
import { resumeAfterLastCursor } from './resume.mjs';

// `cursor` and `$after`: a reconnect resumes after the last notice (resume.mjs).
const ON_NOTIFICATION = gql`
  subscription OnNotification($userName: String!, $after: String) {
    onNotificationReceived(userName: $userName, after: $after) { id text timestamp scope cursor }
  }
`;

const SEND_NOTIFICATION = gql`
  mutation SendNotification($to: String!, $text: String!) {
    sendNotification(to: $to, text: $text) { receivedUsers id }
  }
`;

// pubUrl: e.g. http://localhost:8080/query; subUrl: e.g. ws://localhost:8081/graphql
// wsOptions: more graphql-ws options, e.g. { retryAttempts: Infinity }.
export function createNotificationsClient({ pubUrl, subUrl, wsOptions }) {
  const wsClient = resumeAfterLastCursor(createWSClient({ url: subUrl, webSocketImpl: WebSocket, ...wsOptions }));
  return new Client({
    url: pubUrl,
    exchanges: [
      fetchExchange,
      subscriptionExchange({
        forwardSubscription(request) {
          const input = { ...request, query: request.query || '' };
          return {
            subscribe(sink) {
              const unsubscribe = wsClient.subscribe(input, sink);
              return { unsubscribe };
            },
          };
        },
      }),
    ],
  });
}

// Calls onNotice({ id, text, timestamp, scope, cursor }) for every notice to
// userName (scope: PERSON, STORE, COMPANY or PUBLIC — whom it was sent to),
// from after the cursor after on (the list's pageInfo.startCursor), or from now.
// Returns a function that ends the subscription.
export function subscribeToNotices(client, userName, onNotice, onError = console.error, after = null) {
  const { unsubscribe } = client
    .subscription(ON_NOTIFICATION, { userName, after })
    .subscribe(({ data, error }) => (error ? onError(error) : onNotice(data.onNotificationReceived)));
  return unsubscribe;
}

// Returns { receivedUsers, id }.
export async function sendNotification(client, to, text) {
  const { data, error } = await client.mutation(SEND_NOTIFICATION, { to, text }).toPromise();
  if (error) throw error;
  return data.sendNotification;
}
