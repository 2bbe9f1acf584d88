package gqlserve

import (
	"context"
	"errors"
	"log/slog"
	"unicode/utf8"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/oshirase/oshirase/service/auth"
	"github.com/oshirase/oshirase/service/errkind"
	"github.com/oshirase/oshirase/service/logging"
	"github.com/oshirase/oshirase/wire"
)

func init() {
	// Errors of these codes refuse the request before anything runs, like
	// parse and validation errors: a request error over POST (no data;
	// 400 to application/graphql-response+json) and, on a WebSocket, an
	// "error" message rather than a "next" one.
	errcode.RegisterErrorType(errkind.CodeTooComplex, errcode.KindProtocol)
	errcode.RegisterErrorType(errkind.CodeBadRequest, errcode.KindProtocol)
}

// maxQuotedMessage bounds the message of a parse or validation error,
// which may quote the client's document (a 60 KB string literal, say):
// enough to name what is wrong, never the request echoed back.
const maxQuotedMessage = 256

// PresentError turns errors into GraphQL errors at the edge; every error
// a client receives carries a code (ErrorFor).
func PresentError(log *slog.Logger) graphql.ErrorPresenterFunc {
	return func(ctx context.Context, err error) *gqlerror.Error {
		return ErrorFor(ctx, err, log)
	}
}

// ErrorFor is the one mapping from an error to what a client sees: parse
// and validation errors keep their code (a message quoting the document is
// cut short), bad input says what was wrong (BAD_USER_INPUT), a rejected
// credential or action says so (UNAUTHENTICATED, FORBIDDEN), an expired
// cursor says to start afresh (CURSOR_EXPIRED), an unavailable dependency
// says to retry (UNAVAILABLE), anything else is
// logged and answered with a generic message (INTERNAL) that leaks
// nothing. Streaming transports that answer errors outside gqlgen use it
// too.
func ErrorFor(ctx context.Context, err error, log *slog.Logger) *gqlerror.Error {
	var gqlErr *gqlerror.Error
	if errors.As(err, &gqlErr) && gqlErr.Err == nil {
		// Raised by gqlgen or gqlparser themselves (parse, validation,
		// request decoding), or by this package's checks.
		e := *gqlErr
		e.Message = clip(e.Message, maxQuotedMessage)
		if _, ok := e.Extensions["code"]; !ok {
			e.Extensions = map[string]any{"code": errkind.CodeBadRequest}
		}
		return &e
	}
	// e may be err itself (a located field error): keep what happened
	// for the log before the message is replaced.
	detail := err.Error()
	// The message of the error the resolver returned, without the
	// position and path that gqlgen's wrapper adds to its Error().
	e := graphql.DefaultErrorPresenter(ctx, err)
	switch {
	case introspectionDisabled(err):
		// A request for the schema while INTROSPECTION=false: the caller's
		// doing, not a fault, so neither INTERNAL nor an error log line
		// per probe.
		e.Message = "introspection is disabled on this server"
		e.Extensions = map[string]any{"code": errkind.CodeForbidden}
	case errors.Is(err, errkind.ErrBadInput), errors.Is(err, wire.ErrInvalidName):
		e.Extensions = map[string]any{"code": errkind.CodeBadUserInput}
	case errors.Is(err, auth.ErrUnauthenticated):
		e.Extensions = map[string]any{"code": errkind.CodeUnauthenticated}
	case errors.Is(err, errkind.ErrForbidden):
		e.Extensions = map[string]any{"code": errkind.CodeForbidden}
	case errors.Is(err, errkind.ErrCursorExpired):
		e.Message = "the cursor is older than the history kept, or from before the history started over; fetch the list again and subscribe without it"
		e.Extensions = map[string]any{"code": errkind.CodeCursorExpired}
	case errors.Is(err, errkind.ErrRateLimited):
		e.Extensions = map[string]any{"code": errkind.CodeRateLimited}
	case errors.Is(err, errkind.ErrUnavailable):
		e.Message = "notification service temporarily unavailable; retry"
		e.Extensions = map[string]any{"code": errkind.CodeUnavailable}
		// A Redis outage fails every request at once: one line a second,
		// with how many were held back.
		if ok, held := unavailableLog.Allow(); ok {
			log.Warn("request failed: dependency unavailable", "err", detail, "not_logged_since_last", held)
		}
	default:
		log.Error("request failed", "err", detail)
		e.Message = "internal error"
		e.Extensions = map[string]any{"code": errkind.CodeInternal}
	}
	return e
}

// unavailableLog throttles the one line per request failed for an
// unavailable dependency.
var unavailableLog logging.Throttle

// errIntrospectionDisabled is the text of the plain error gqlgen's
// __schema and __type resolvers return without extension.Introspection;
// gqlgen exports no value to compare with. (dev/e2e fails if it changes.)
const errIntrospectionDisabled = "introspection disabled"

func introspectionDisabled(err error) bool {
	for ; err != nil; err = errors.Unwrap(err) {
		if err.Error() == errIntrospectionDisabled {
			return true
		}
	}
	return false
}

// clip shortens s to at most max bytes, on a rune boundary, marking the cut.
func clip(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
