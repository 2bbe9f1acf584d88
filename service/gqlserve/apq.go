package gqlserve

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/lru"
)

// Automatic persisted queries (Apollo's protocol, which Apollo Client's
// PersistedQueryLink and urql's persistedExchange speak): a client sends
// the SHA-256 of its document in extensions.persistedQuery instead of the
// document. A hash the server does not know is answered
// PERSISTED_QUERY_NOT_FOUND, and the client sends the document once more
// with its hash, which the server checks and keeps. Both services serve it
// (gqlgen's extension.AutomaticPersistedQuery) with a store bounded in
// entries and in the size of a document it keeps.
const (
	// persistedEntries is how many documents are kept, the least recently
	// used going first.
	persistedEntries = 1000
	// maxPersistedBytes is the largest document kept: a larger one is
	// served, but its hash alone is never found, so its client keeps
	// sending the document. The store holds at most about 16 MiB.
	maxPersistedBytes = 16 << 10
)

// persistedQueries is the APQ store: an LRU that refuses large documents.
type persistedQueries struct {
	lru *lru.LRU[string]
}

var _ graphql.Cache[string] = persistedQueries{}

func newPersistedQueries() persistedQueries {
	return persistedQueries{lru: lru.New[string](persistedEntries)}
}

func (p persistedQueries) Get(ctx context.Context, hash string) (string, bool) {
	return p.lru.Get(ctx, hash)
}

func (p persistedQueries) Add(ctx context.Context, hash, query string) {
	if len(query) > maxPersistedBytes {
		return
	}
	p.lru.Add(ctx, hash, query)
}
