package httpserve

import (
	"net/http"
	"slices"
	"strings"

	"github.com/oshirase/oshirase/service/errkind"
	"github.com/rs/cors"
)

// Origins is one allowlist of browser origins that drives both CORS and
// the WebSocket origin check, so the two can never disagree. "*" allows
// every origin.
type Origins struct {
	any  bool
	list []string
}

// NewOrigins normalises an allowlist such as ["https://app.example.com"].
func NewOrigins(list []string) Origins {
	o := Origins{}
	for _, s := range list {
		s = strings.TrimRight(strings.ToLower(strings.TrimSpace(s)), "/")
		if s == "*" {
			o.any = true
		}
		if s != "" {
			o.list = append(o.list, s)
		}
	}
	return o
}

// Any reports whether every origin is allowed.
func (o Origins) Any() bool { return o.any }

// Allowed reports whether origin may use the service. Requests without an
// Origin header do not come from a browser page and are allowed.
func (o Origins) Allowed(origin string) bool {
	if origin == "" || o.any {
		return true
	}
	return slices.Contains(o.list, strings.TrimRight(strings.ToLower(origin), "/"))
}

// Guard answers 403 FORBIDDEN to a request from a browser origin not on
// the list (a cross-site WebSocket hijack, for one) and applies CORS to the
// rest.
// With "*" CORS allows any origin but never with credentials.
func (o Origins) Guard(next http.Handler) http.Handler {
	c := cors.New(cors.Options{
		AllowOriginFunc:  o.Allowed,
		AllowedMethods:   []string{http.MethodGet, http.MethodPost, http.MethodOptions},
		AllowedHeaders:   []string{"Authorization", "Content-Type", "Accept"},
		AllowCredentials: !o.any,
		MaxAge:           600,
	})
	return c.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !o.Allowed(r.Header.Get("Origin")) {
			errkind.WriteHTTP(w, http.StatusForbidden, errkind.CodeForbidden, "origin not allowed")
			return
		}
		next.ServeHTTP(w, r)
	}))
}
