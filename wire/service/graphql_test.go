package service_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/oshirase/oshirase/wire/service"
)

// Each kind of error gets its code; only faults become INTERNAL.
func TestPresentError(t *testing.T) {
	present := service.PresentError(slog.New(slog.DiscardHandler))
	for _, tc := range []struct {
		err  error
		code string
	}{
		{fmt.Errorf("publisher: %w: text is empty", service.ErrBadInput), "BAD_USER_INPUT"},
		{fmt.Errorf("access: %w", service.ErrForbidden), "FORBIDDEN"},
		{fmt.Errorf("publish: %w", service.ErrUnavailable), "UNAVAILABLE"},
		// gqlgen's answer to __schema or __type without introspection,
		// wrapped as the executor hands it over.
		{gqlerror.WrapPath(nil, errors.New("introspection disabled")), "FORBIDDEN"},
		{errors.New("redis: connection pool exhausted"), "INTERNAL"},
	} {
		e := present(context.Background(), tc.err)
		if e.Extensions["code"] != tc.code {
			t.Errorf("%v: code %v, want %s", tc.err, e.Extensions["code"], tc.code)
		}
		if tc.code == "INTERNAL" && e.Message != "internal error" {
			t.Errorf("%v: message %q leaks the cause", tc.err, e.Message)
		}
	}
}
