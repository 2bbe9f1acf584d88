package gqlserve

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	"github.com/99designs/gqlgen/graphql"
	"github.com/oshirase/oshirase/service/errkind"
)

// LimitBody reads the body of a GraphQL request over HTTP (POST, and SSE,
// which is a POST) before gqlgen does, so that a refusal carries a code and
// repeats nothing of the request: a body over MaxBodyBytes gets 413
// REQUEST_TOO_LARGE (counted and logged), and a JSON body that is not a GraphQL request
// ({"query": "…", "operationName": "…", "variables": {…}, "extensions":
// {…}}) gets 400 BAD_REQUEST. gqlgen would answer the first with HTTP 200
// and the second with a message quoting the whole body. Other requests
// (WebSocket upgrades, OPTIONS, other content types) pass; NewGraphQL
// answers those it does not serve.
func (l *Limits) LimitBody(next http.Handler) http.Handler {
	maxBytes := l.cfg.MaxBodyBytes
	tooLarge := fmt.Sprintf("the request body is over the limit of %d bytes", maxBytes)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Body == nil {
			next.ServeHTTP(w, r)
			return
		}
		if r.ContentLength > maxBytes {
			w.Header().Set("Connection", "close") // the rest of the body is not read
			l.refuseBody()
			errkind.WriteHTTP(w, http.StatusRequestEntityTooLarge, errkind.CodeRequestTooLarge, tooLarge)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBytes))
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			l.refuseBody()
			errkind.WriteHTTP(w, http.StatusRequestEntityTooLarge, errkind.CodeRequestTooLarge, tooLarge)
			return
		case err != nil:
			errkind.WriteHTTP(w, http.StatusBadRequest, errkind.CodeBadRequest, "the request body could not be read")
			return
		}
		if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "application/json" {
			params, ok := decodeRequest(body)
			if !ok {
				errkind.WriteHTTP(w, http.StatusBadRequest, errkind.CodeBadRequest,
					`the request body is not a GraphQL request: want a JSON object {"query": string, "operationName": string, "variables": object, "extensions": object}`)
				return
			}
			// The POST transport takes the decoded request from here
			// instead of decoding the body a second time.
			r = r.WithContext(context.WithValue(r.Context(), decodedKey{}, params))
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		next.ServeHTTP(w, r)
	})
}

// decodedKey carries the GraphQL request LimitBody decoded.
type decodedKey struct{}

// decodeRequest decodes body as gqlgen's transports decode it
// (DecodeParams), and reports whether it is a GraphQL request.
func decodeRequest(body []byte) (*graphql.RawParams, bool) {
	p, err := DecodeParams(body)
	return p, err == nil
}
