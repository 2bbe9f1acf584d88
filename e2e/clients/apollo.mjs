// Apollo Client 4: mutations go to pub over HTTP, subscriptions to sub over
// graphql-ws. In a browser leave out `webSocketImpl`.
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql } from '@apollo/client';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions';
import { OperationTypeNode } from 'graphql';
import { createClient } from 'graphql-ws';
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
// token: with AUTH_MODE=jwt, the signed-in user's JWT; sub reads it from
// connection_init's payload (connectionParams).
// wsOptions: more graphql-ws options, e.g. { retryAttempts: Infinity }.
export function createNotificationsClient({ pubUrl, subUrl, token, wsOptions }) {
  const connectionParams = token ? { Authorization: `Bearer ${token}` } : undefined;
  const wsClient = createClient({ url: subUrl, webSocketImpl: WebSocket, connectionParams, ...wsOptions });
  return new ApolloClient({
    link: ApolloLink.split(
      ({ operationType }) => operationType === OperationTypeNode.SUBSCRIPTION,
      new GraphQLWsLink(resumeAfterLastCursor(wsClient)),
      new HttpLink({ uri: pubUrl }),
    ),
    cache: new InMemoryCache(),
  });
}

// Calls onNotice({ id, text, timestamp, scope, cursor }) for every notice to
// userName (scope: PERSON, STORE, COMPANY or PUBLIC — whom it was sent to),
// from after the cursor after on (the list's pageInfo.startCursor), or from now.
// Returns a function that ends the subscription.
export function subscribeToNotices(client, userName, onNotice, onError = console.error, after = null) {
  const subscription = client
    .subscribe({ query: ON_NOTIFICATION, variables: { userName, after } })
    .subscribe({
      next: ({ data, error }) => (error ? onError(error) : onNotice(data.onNotificationReceived)),
      error: onError,
    });
  return () => subscription.unsubscribe();
}

// Returns { receivedUsers, id }.
export async function sendNotification(client, to, text) {
  const { data } = await client.mutate({ mutation: SEND_NOTIFICATION, variables: { to, text } });
  return data.sendNotification;
}
