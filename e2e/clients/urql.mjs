// urql: mutations go to pub over HTTP, subscriptions to sub over
// graphql-ws. In a browser leave out `webSocketImpl`.
import { Client, fetchExchange, gql, subscriptionExchange } from '@urql/core';
import { createClient as createWSClient } from 'graphql-ws';
import WebSocket from 'ws';

const ON_NOTIFICATION = gql`
  subscription OnNotification($userName: String!) {
    onNotificationReceived(userName: $userName) { id text timestamp scope }
  }
`;

const SEND_NOTIFICATION = gql`
  mutation SendNotification($to: String!, $text: String!) {
    sendNotification(to: $to, text: $text) { receivedUsers id }
  }
`;

// pubUrl: e.g. http://localhost:8080/query; subUrl: e.g. ws://localhost:8081/graphql
export function createNotificationsClient({ pubUrl, subUrl }) {
  const wsClient = createWSClient({ url: subUrl, webSocketImpl: WebSocket });
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

// Calls onNotice({ id, text, timestamp, scope }) for every notice to userName
// (scope: PERSON, STORE, COMPANY or PUBLIC — whom it was sent to).
// Returns a function that ends the subscription.
export function subscribeToNotices(client, userName, onNotice, onError = console.error) {
  const { unsubscribe } = client
    .subscription(ON_NOTIFICATION, { userName })
    .subscribe(({ data, error }) => (error ? onError(error) : onNotice(data.onNotificationReceived)));
  return unsubscribe;
}

// Returns { receivedUsers, id }.
export async function sendNotification(client, to, text) {
  const { data, error } = await client.mutation(SEND_NOTIFICATION, { to, text }).toPromise();
  if (error) throw error;
  return data.sendNotification;
}
