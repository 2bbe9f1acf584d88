// graphql-ws — the `graphql-transport-ws` subprotocol. Apollo Client and
// urql use this same client underneath. In a browser leave out
// `webSocketImpl`: the built-in WebSocket is used.
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const ON_NOTIFICATION = /* GraphQL */ `
  subscription OnNotification($userName: String!) {
    onNotificationReceived(userName: $userName) { id text timestamp scope }
  }
`;

// url: sub's endpoint, e.g. ws://localhost:8081/graphql
export function createNotificationsClient(url, options = {}) {
  return createClient({ url, webSocketImpl: WebSocket, ...options });
}

// Calls onNotice({ id, text, timestamp, scope }) for every notice to userName
// (scope: PERSON, STORE, COMPANY or PUBLIC — whom it was sent to).
// Returns a function that ends the subscription.
export function subscribeToNotices(client, userName, onNotice, onError = console.error) {
  return client.subscribe(
    { query: ON_NOTIFICATION, variables: { userName } },
    {
      next: ({ data, errors }) => (errors ? onError(errors) : onNotice(data.onNotificationReceived)),
      error: onError,
      complete: () => {},
    },
  );
}
