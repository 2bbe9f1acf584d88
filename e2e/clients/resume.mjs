// Resuming after a reconnect, for clients built on graphql-ws (Apollo
// Client's GraphQLWsLink, urql's subscriptionExchange, graphql-ws itself).
// When graphql-ws reconnects it re-sends each subscription's payload
// object as it stands. Wrapped, each subscription gets a payload of its
// own whose variables.after is the cursor of the last notice it received,
// so the re-subscribe resumes after it: the notices sent while the
// connection was down come first, exactly once, then live ones. The
// subscription declares `$after: String`, passes it as `after` and
// selects `cursor`.
export function resumeAfterLastCursor(wsClient) {
  return {
    ...wsClient,
    subscribe(request, sink) {
      const payload = { ...request, variables: { ...request.variables } };
      return wsClient.subscribe(payload, {
        next(result) {
          const cursor = result.data?.onNotificationReceived?.cursor;
          if (cursor) payload.variables.after = cursor;
          sink.next(result);
        },
        error: (err) => sink.error(err),
        complete: () => sink.complete(),
      });
    },
  };
}
