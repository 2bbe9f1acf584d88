package service

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"unicode/utf8"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/oshirase/oshirase/wire"
	"github.com/oshirase/oshirase/wire/auth"
)

// Codes: the extensions.code of every error either service answers. The
// README's error table lists each with its HTTP status and close code;
// keep the two in step.
const (
	// CodeParseFailed: the document is not GraphQL (gqlgen's code).
	CodeParseFailed = errcode.ParseFailed
	// CodeValidationFailed: the document does not fit the schema or breaks
	// a validation rule, e.g. a subscription with two root fields
	// (gqlgen's code).
	CodeValidationFailed = errcode.ValidationFailed
	// CodeTooComplex: the document is over MaxQueryTokens,
	// MaxQuerySelections or MaxRepeatedField (the code gqlgen's complexity
	// limit uses).
	CodeTooComplex = "COMPLEXITY_LIMIT_EXCEEDED"
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
	// CodeUnavailable: a dependency (Redis) did not answer in time; retry.
	CodeUnavailable = "UNAVAILABLE"
	// CodeInternal: anything else; details only in the server log.
	CodeInternal = "INTERNAL"
)

// Codes lists every code above. The README's error table lists the same,
// no more and no fewer (dev/docs checks).
var Codes = []string{
	CodeParseFailed, CodeValidationFailed, CodeTooComplex, CodeBadRequest, CodeRequestTooLarge,
	CodeBadUserInput, CodeUnauthenticated, CodeForbidden, CodeUnavailable, CodeInternal,
}

func init() {
	// Errors of these codes refuse the request before anything runs, like
	// parse and validation errors: gqlgen answers them with HTTP 422
	// (400 to application/graphql-response+json) and, on a WebSocket, an
	// "error" message rather than a "next" one.
	errcode.RegisterErrorType(CodeTooComplex, errcode.KindProtocol)
	errcode.RegisterErrorType(CodeBadRequest, errcode.KindProtocol)
}

// Errors that components wrap so that the edge can answer them properly.
var (
	// ErrBadInput: the caller sent something unusable; the message says what.
	ErrBadInput = errors.New("bad input")
	// ErrUnavailable: a dependency (Redis) did not answer in time; retry.
	ErrUnavailable = errors.New("temporarily unavailable")
	// ErrForbidden: the caller is known but may not do this.
	ErrForbidden = errors.New("forbidden")
)

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
// credential or action says so (UNAUTHENTICATED, FORBIDDEN), an
// unavailable dependency says to retry (UNAVAILABLE), anything else is
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
			e.Extensions = map[string]any{"code": CodeBadRequest}
		}
		return &e
	}
	// The message of the error the resolver returned, without the
	// position and path that gqlgen's wrapper adds to its Error().
	e := graphql.DefaultErrorPresenter(ctx, err)
	switch {
	case errors.Is(err, ErrBadInput), errors.Is(err, wire.ErrInvalidName):
		e.Extensions = map[string]any{"code": CodeBadUserInput}
	case errors.Is(err, auth.ErrUnauthenticated):
		e.Extensions = map[string]any{"code": CodeUnauthenticated}
	case errors.Is(err, ErrForbidden):
		e.Extensions = map[string]any{"code": CodeForbidden}
	case errors.Is(err, ErrUnavailable):
		e.Message = "notification service temporarily unavailable; retry"
		e.Extensions = map[string]any{"code": CodeUnavailable}
		log.Warn("request failed: dependency unavailable", "err", err)
	default:
		log.Error("request failed", "err", err)
		e.Message = "internal error"
		e.Extensions = map[string]any{"code": CodeInternal}
	}
	return e
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

// WriteError answers an HTTP request that is refused before GraphQL runs
// with a GraphQL response holding one error with code.
func WriteError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]any{{
		"message": message, "extensions": map[string]any{"code": code},
	}}})
}
