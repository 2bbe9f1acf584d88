// Apollo Client 4: mutations go to pub over HTTP, subscriptions to sub over
// graphql-ws. In a browser leave out `webSocketImpl`.
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql } from '@apollo/client';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions';
import { OperationTypeNode } from 'graphql';
import { createClient } from 'graphql-ws';
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
// token: with AUTH_MODE=jwt, the signed-in user's JWT; sub reads it from
// connection_init's payload (connectionParams).
export function createNotificationsClient({ pubUrl, subUrl, token }) {
  const connectionParams = token ? { Authorization: `Bearer ${token}` } : undefined;
  return new ApolloClient({
    link: ApolloLink.split(
      ({ operationType }) => operationType === OperationTypeNode.SUBSCRIPTION,
      new GraphQLWsLink(createClient({ url: subUrl, webSocketImpl: WebSocket, connectionParams })),
      new HttpLink({ uri: pubUrl }),
    ),
    cache: new InMemoryCache(),
  });
}

// Calls onNotice({ id, text, timestamp, scope }) for every notice to userName
// (scope: PERSON, STORE, COMPANY or PUBLIC — whom it was sent to).
// Returns a function that ends the subscription.
export function subscribeToNotices(client, userName, onNotice, onError = console.error) {
  const subscription = client
    .subscribe({ query: ON_NOTIFICATION, variables: { userName } })
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
