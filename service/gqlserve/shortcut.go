package gqlserve

import (
	"context"
	"net/http"

	"github.com/99designs/gqlgen/graphql"
)

// Shortcut answers the POST requests that serve recognises without
// gqlgen's executor, and passes every other request to next, the handler
// of NewGraphQL. serve gets the request LimitBody decoded (so Shortcut
// goes between LimitBody and next) and returns the whole response body of
// an operation it ran, answered 200 as the POST transport answers one
// that ran; false leaves the request to next, and serve must then have
// run nothing. A request with extensions (an automatic persisted query)
// always goes to next.
func Shortcut(next http.Handler, serve func(ctx context.Context, p *graphql.RawParams) ([]byte, bool)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := r.Context().Value(decodedKey{}).(*graphql.RawParams)
		if !ok || len(p.Extensions) > 0 || !(post{}).Supports(r) {
			next.ServeHTTP(w, r)
			return
		}
		body, ok := serve(r.Context(), p)
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", responseMedia(r.Header.Get("Accept")))
		_, _ = w.Write(body)
	})
}
