// subscriptions-transport-ws — the legacy `graphql-ws` subprotocol, for
// older apps. The package is unmaintained; prefer graphql-ws for new code.
// In a browser leave out the third argument (WebSocket).
import { SubscriptionClient } from 'subscriptions-transport-ws';
import WebSocket from 'ws';

const ON_NOTIFICATION = /* GraphQL */ `
  subscription OnNotification($userName: String!) {
    onNotificationReceived(userName: $userName) { id text timestamp scope }
  }
`;

// url: sub's endpoint, e.g. ws://localhost:8081/graphql
export function createNotificationsClient(url, options = {}) {
  return new SubscriptionClient(url, { reconnect: true, ...options }, WebSocket);
}

// Calls onNotice({ id, text, timestamp, scope }) for every notice to userName
// (scope: PERSON, STORE, COMPANY or PUBLIC — whom it was sent to).
// Returns a function that ends the subscription.
export function subscribeToNotices(client, userName, onNotice, onError = console.error) {
  const subscription = client
    .request({ query: ON_NOTIFICATION, variables: { userName } })
    .subscribe({
      next: ({ data, errors }) => (errors ? onError(errors) : onNotice(data.onNotificationReceived)),
      error: onError,
    });
  return () => subscription.unsubscribe();
}
