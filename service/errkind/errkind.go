// Package errkind names the kinds of failure that components report and
// the code each is answered with. Components wrap the Err values with %w
// and a short prefix; only the edge (the GraphQL error presenter, HTTP
// handlers, WebSocket close codes) decides what the client sees, and every
// answer carries one of the codes below.
package errkind

import (
	"encoding/json"
	"errors"
	"net/http"
)

var (
	// ErrBadInput: the caller sent something unusable; the message says what.
	ErrBadInput = errors.New("bad input")
	// ErrUnavailable: a dependency (Redis) did not answer in time; retry.
	ErrUnavailable = errors.New("temporarily unavailable")
	// ErrForbidden: the caller is known but may not do this.
	ErrForbidden = errors.New("forbidden")
	// ErrCursorExpired: a position in a history can no longer be resumed
	// (it is older than what is kept, or from another epoch); the client
	// starts afresh.
	ErrCursorExpired = errors.New("cursor expired")
	// ErrRateLimited: the caller is over one of its limits (a rate, or
	// its connections); retry later.
	ErrRateLimited = errors.New("rate limited")
)

// Codes: the extensions.code of every error either service answers. The
// README's error table lists each with its HTTP status and close code;
// keep the two in step.
const (
	// CodeParseFailed: the document is not GraphQL (gqlgen's errcode.ParseFailed).
	CodeParseFailed = "GRAPHQL_PARSE_FAILED"
	// CodeValidationFailed: the document does not fit the schema or breaks
	// a validation rule, e.g. a subscription with two root fields
	// (gqlgen's code).
	CodeValidationFailed = "GRAPHQL_VALIDATION_FAILED"
	// CodeTooComplex: the document is over a bound of gqlserve.Limits:
	// MaxQueryTokens, MaxQuerySelections, MaxRepeatedField,
	// MAX_QUERY_DEPTH, or MAX_QUERY_COMPLEXITY as gqlgen's complexity
	// extension scores it (the code that extension answers).
	CodeTooComplex = "COMPLEXITY_LIMIT_EXCEEDED"
	// CodePersistedQueryNotFound: an automatic persisted query's hash
	// names no document the service holds; send the document with it
	// (gqlgen's extension.AutomaticPersistedQuery answers it).
	CodePersistedQueryNotFound = "PERSISTED_QUERY_NOT_FOUND"
	// CodeBadRequest: the HTTP request or message is not a GraphQL
	// request: not JSON, the wrong method or content type, a subscription
	// over plain POST.
	CodeBadRequest = "BAD_REQUEST"
	// CodeRequestTooLarge: the request body is over the service's limit.
	CodeRequestTooLarge = "REQUEST_TOO_LARGE"
	// CodeBadUserInput: the arguments are unusable; the message says why.
	CodeBadUserInput = "BAD_USER_INPUT"
	// CodeUnauthenticated: missing, invalid or expired credentials.
	CodeUnauthenticated = "UNAUTHENTICATED"
	// CodeForbidden: the caller is known but may not do this.
	CodeForbidden = "FORBIDDEN"
	// CodeCursorExpired: a cursor can no longer be resumed exactly; fetch
	// the list again and subscribe without it.
	CodeCursorExpired = "CURSOR_EXPIRED"
	// CodeSlowConsumer: an SSE stream's queue overflowed (its last event;
	// a WebSocket is closed with 1013 instead); reconnect and catch up.
	CodeSlowConsumer = "SLOW_CONSUMER"
	// CodeUnavailable: a dependency (Redis) did not answer in time; retry.
	CodeUnavailable = "UNAVAILABLE"
	// CodeRateLimited: the caller is over a rate (PUBLISH_RATE,
	// CONNECT_RATE) or its connections (MAX_CONNECTIONS_PER_USER); HTTP
	// 429 with Retry-After, or close 4429.
	CodeRateLimited = "RATE_LIMITED"
	// CodeTooManySubscriptions: a WebSocket already runs
	// MAX_SUBSCRIPTIONS_PER_CONNECTION operations; complete one first.
	CodeTooManySubscriptions = "TOO_MANY_SUBSCRIPTIONS"
	// CodeInternal: anything else; details only in the server log.
	CodeInternal = "INTERNAL"
)

// Codes lists every code above. The README's error table lists the same,
// no more and no fewer (dev/docs checks).
var Codes = []string{
	CodeParseFailed, CodeValidationFailed, CodeTooComplex, CodePersistedQueryNotFound, CodeBadRequest, CodeRequestTooLarge,
	CodeBadUserInput, CodeUnauthenticated, CodeForbidden, CodeCursorExpired, CodeSlowConsumer, CodeUnavailable,
	CodeRateLimited, CodeTooManySubscriptions, CodeInternal,
}

// WriteHTTP answers an HTTP request that is refused before GraphQL runs
// with a GraphQL response holding one error with code.
func WriteHTTP(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]any{{
		"message": message, "extensions": map[string]any{"code": code},
	}}})
}
