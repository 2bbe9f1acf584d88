// Package errkind names the kinds of failure that components report and the
// edge (GraphQL error presenter, HTTP handlers, WebSocket close codes) turns
// into a code for the client. Components wrap these with %w and a short
// prefix; only the edge decides what the client sees.
package errkind

import "errors"

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
)
