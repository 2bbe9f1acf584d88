// graphql-sse — GraphQL over Server-Sent Events, "distinct connections"
// mode: one HTTP request per subscription, to the same /graphql endpoint
// as the WebSocket. Works where WebSockets are blocked; in a browser the
// built-in fetch is used.
import { createClient } from 'graphql-sse';

const ON_NOTIFICATION = /* GraphQL */ `
  subscription OnNotification($userName: String!) {
    onNotificationReceived(userName: $userName) { id text timestamp scope }
  }
`;

// url: sub's endpoint, e.g. http://localhost:8081/graphql
export function createNotificationsClient(url, options = {}) {
  return createClient({ url, ...options });
}

// Calls onNotice({ id, text, timestamp, scope }) for every notice to userName
// (scope: PERSON, STORE, COMPANY or PUBLIC — whom it was sent to).
// Returns a function that ends the subscription (and its request).
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
