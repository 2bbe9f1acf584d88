package client

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/Khan/genqlient/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// Config configures a Client. Only URL is required.
type Config struct {
	// URL is pub's GraphQL endpoint, e.g. http://localhost:8080/query.
	URL string
	// APIKey is sent as "Authorization: Bearer <APIKey>" (pub's
	// PUBLISHER_API_KEYS). Leave empty with AUTH_MODE=none or with Token.
	APIKey string
	// Token, when set, is asked for a bearer token (a JWT with the
	// publisher role) before every attempt, so a token that is refreshed
	// meanwhile is picked up. It takes precedence over APIKey.
	Token func(ctx context.Context) (string, error)
	// HTTPClient sends the requests. Default: a client of its own.
	HTTPClient *http.Client
	// AttemptTimeout bounds one attempt; an attempt that runs out is
	// retried (with the same idempotency keys). Default: 10s — longer
	// than pub's PUBLISH_TIMEOUT (3s), so a slow Redis answers
	// UNAVAILABLE before the client gives up on its own.
	AttemptTimeout time.Duration
	// Retries is how many times a call is retried after a timeout, a
	// failed connection, an HTTP 5xx or UNAVAILABLE. Default: 5; negative:
	// none.
	Retries int
	// RetryDelay is the wait before the first retry; it doubles for each
	// next one, up to 5s, with jitter. Default: 200ms.
	RetryDelay time.Duration
	// BatchSize is the most notices PublishBatch sends in one request
	// (pub's MAX_BATCH). Default: 1000.
	BatchSize int
}

// Client publishes notices through pub. It is safe for concurrent use.
type Client struct {
	cfg Config
	gql graphql.Client
}

// New returns a Client.
func New(cfg Config) *Client {
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{}
	}
	if cfg.AttemptTimeout <= 0 {
		cfg.AttemptTimeout = 10 * time.Second
	}
	if cfg.Retries == 0 {
		cfg.Retries = 5
	}
	if cfg.RetryDelay <= 0 {
		cfg.RetryDelay = 200 * time.Millisecond
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 1000
	}
	c := &Client{cfg: cfg}
	c.gql = graphql.NewClient(cfg.URL, doer{c})
	return c
}

// Scope says whom a notice is for.
type Scope string

const (
	Person  Scope = "PERSON"  // one user (To) of the tenant
	Store   Scope = "STORE"   // everyone in one store (To) of the tenant
	Company Scope = "COMPANY" // everyone in the tenant
	Public  Scope = "PUBLIC"  // everyone (platform credentials only)
)

// Notice is one notice to publish.
type Notice struct {
	Scope Scope
	// To is the user (Person) or store (Store); empty for Company and Public.
	To string
	// Tenant is the tenant to address; empty: the credential's own. Only
	// platform credentials may name another.
	Tenant string
	Text   string
	// IdempotencyKey makes the publish happen once however often it is
	// retried (within pub's IDEMPOTENCY_TTL): name the change that caused
	// the notice, e.g. "order-7-shipped". Empty: the client makes one up
	// for the call, which covers its own retries.
	IdempotencyKey string
}

// Result is what a publish did.
type Result struct {
	// ReceivedUsers is how many live subscriptions received the notice.
	ReceivedUsers int
	// ID is the notice's id, as subscribers see it.
	ID string
	// Timestamp is the publish time, as subscribers see it (seconds).
	Timestamp time.Time
}

// BatchResult is one notice's outcome in PublishBatch: Err is nil when it
// went out, else an *Error saying why not.
type BatchResult struct {
	Result
	Err error
}

// The codes an *Error carries (pub's extensions.code).
const (
	CodeBadUserInput    = "BAD_USER_INPUT"
	CodeForbidden       = "FORBIDDEN"
	CodeUnauthenticated = "UNAUTHENTICATED"
	CodeUnavailable     = "UNAVAILABLE"
	CodeInternal        = "INTERNAL"
)

// Error is an error pub answered.
type Error struct {
	Code    string // e.g. CodeBadUserInput; "" when pub gave none
	Message string
	Status  int // the HTTP status; 200 for an error inside a GraphQL answer
}

func (e *Error) Error() string {
	return fmt.Sprintf("oshirase: %s: %s", e.Code, e.Message)
}

// Option changes one call.
type Option func(*callOptions)

type callOptions struct{ key string }

// WithIdempotencyKey sets SendNotification's idempotency key (see
// Notice.IdempotencyKey).
func WithIdempotencyKey(key string) Option { return func(o *callOptions) { o.key = key } }

// SendNotification sends text to one user of the credential's tenant.
func (c *Client) SendNotification(ctx context.Context, to, text string, opts ...Option) (Result, error) {
	var o callOptions
	for _, opt := range opts {
		opt(&o)
	}
	key := keyOr(o.key)
	var res Result
	err := c.retry(ctx, func(ctx context.Context) error {
		data, err := sendNotification(ctx, c.gql, to, text, &key)
		if err != nil {
			return err
		}
		r := data.SendNotification
		res = Result{ReceivedUsers: r.ReceivedUsers, ID: r.Id, Timestamp: time.Unix(int64(r.Timestamp), 0)}
		return nil
	})
	return res, err
}

// Publish sends one notice to any scope.
func (c *Client) Publish(ctx context.Context, n Notice) (Result, error) {
	n.IdempotencyKey = keyOr(n.IdempotencyKey)
	var res Result
	err := c.retry(ctx, func(ctx context.Context) error {
		data, err := publish(ctx, c.gql, input(n))
		if err != nil {
			return err
		}
		r := data.Publish
		res = Result{ReceivedUsers: r.ReceivedUsers, ID: r.Id, Timestamp: time.Unix(int64(r.Timestamp), 0)}
		return nil
	})
	return res, err
}

// PublishBatch sends many notices, BatchSize per request, and answers one
// BatchResult per notice, in order. A notice pub refuses (bad input,
// another tenant) has its Err and does not fail the others; notices pub
// could not publish in time (UNAVAILABLE) are retried with their keys. The
// error is for the call as a whole (a refused credential, a batch pub
// refuses, retries exhausted); the results are then nil.
func (c *Client) PublishBatch(ctx context.Context, ns []Notice) ([]BatchResult, error) {
	out := make([]BatchResult, len(ns))
	for start := 0; start < len(ns); start += c.cfg.BatchSize {
		end := min(start+c.cfg.BatchSize, len(ns))
		if err := c.publishChunk(ctx, ns[start:end], out[start:end]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (c *Client) publishChunk(ctx context.Context, ns []Notice, out []BatchResult) error {
	inputs := make([]PublishInput, len(ns))
	for i, n := range ns {
		n.IdempotencyKey = keyOr(n.IdempotencyKey)
		inputs[i] = input(n)
	}
	pending := make([]int, len(ns)) // indices still to publish
	for i := range pending {
		pending[i] = i
	}
	return c.retry(ctx, func(ctx context.Context) error {
		send := make([]PublishInput, len(pending))
		for j, i := range pending {
			send[j] = inputs[i]
		}
		data, err := publishBatch(ctx, c.gql, send)
		if err != nil {
			return err
		}
		if len(data.PublishBatch) != len(send) {
			return &Error{Code: CodeInternal, Message: fmt.Sprintf("pub answered %d results for %d notices", len(data.PublishBatch), len(send)), Status: http.StatusOK}
		}
		var again []int
		var unavailable error
		for j, r := range data.PublishBatch {
			i := pending[j]
			if r.Error != nil {
				e := &Error{Code: r.Error.Code, Message: r.Error.Message, Status: http.StatusOK}
				out[i] = BatchResult{Err: e}
				if e.Code == CodeUnavailable {
					again, unavailable = append(again, i), e
				}
				continue
			}
			out[i] = BatchResult{Result: Result{ReceivedUsers: deref(r.ReceivedUsers), ID: derefS(r.Id), Timestamp: time.Unix(int64(deref(r.Timestamp)), 0)}}
		}
		pending = again
		if unavailable != nil {
			return retryItems{unavailable} // retried; once retries run out, those notices keep their UNAVAILABLE
		}
		return nil
	})
}

// retryItems asks retry to try again without failing the call when it
// cannot.
type retryItems struct{ err error }

func (r retryItems) Error() string { return r.err.Error() }

// retry runs attempt, each time within AttemptTimeout, until it succeeds,
// fails in a way a retry cannot mend, Retries are used up, or ctx ends.
func (c *Client) retry(ctx context.Context, attempt func(ctx context.Context) error) error {
	delay := c.cfg.RetryDelay
	for n := 0; ; n++ {
		actx, cancel := context.WithTimeout(ctx, c.cfg.AttemptTimeout)
		err := attempt(actx)
		cancel()
		if err == nil {
			return nil
		}
		var items retryItems
		partial := errors.As(err, &items)
		err = classify(err)
		if ctx.Err() != nil || n >= c.cfg.Retries || !retryable(err) {
			if partial {
				return nil
			}
			if ctx.Err() != nil {
				return fmt.Errorf("oshirase: %w (last attempt: %w)", ctx.Err(), err)
			}
			return err
		}
		wait := delay/2 + rand.N(delay/2+1)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			if partial {
				return nil
			}
			return fmt.Errorf("oshirase: %w (last attempt: %w)", ctx.Err(), err)
		}
		delay = min(2*delay, 5*time.Second)
	}
}

// classify turns what genqlient returned into an *Error where pub
// answered, and leaves transport errors (timeouts, refused connections)
// as they are.
func classify(err error) error {
	var items retryItems
	if errors.As(err, &items) {
		return items.err
	}
	var list gqlerror.List
	if errors.As(err, &list) && len(list) > 0 {
		return fromGraphQL(list[0], http.StatusOK)
	}
	var httpErr *graphql.HTTPError
	if errors.As(err, &httpErr) {
		if len(httpErr.Response.Errors) > 0 {
			return fromGraphQL(httpErr.Response.Errors[0], httpErr.StatusCode)
		}
		return &Error{Message: http.StatusText(httpErr.StatusCode), Status: httpErr.StatusCode}
	}
	return err
}

func fromGraphQL(e *gqlerror.Error, status int) *Error {
	code, _ := e.Extensions["code"].(string)
	return &Error{Code: code, Message: e.Message, Status: status}
}

// retryable: what a retry with the same idempotency keys can mend — pub
// or Redis not answering in time, a connection that failed, a proxy's
// 5xx. Refusals (bad input, credentials) are final.
func retryable(err error) bool {
	var e *Error
	if errors.As(err, &e) {
		return e.Code == CodeUnavailable || e.Status >= 500
	}
	// Not an answer from pub: the request timed out or the connection
	// failed (pub restarting, a network blip).
	return true
}

func input(n Notice) PublishInput {
	in := PublishInput{Scope: string(n.Scope), Text: n.Text}
	if n.To != "" {
		in.To = &n.To
	}
	if n.Tenant != "" {
		in.Tenant = &n.Tenant
	}
	if n.IdempotencyKey != "" {
		in.IdempotencyKey = &n.IdempotencyKey
	}
	return in
}

// keyOr is key, or a new random key (a UUIDv4) when key is empty.
func keyOr(key string) string {
	if key != "" {
		return key
	}
	var b [16]byte
	_, _ = crand.Read(b[:]) // never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func deref(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}

func derefS(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// doer sends genqlient's requests with the credential.
type doer struct{ c *Client }

func (d doer) Do(req *http.Request) (*http.Response, error) {
	cred := d.c.cfg.APIKey
	if d.c.cfg.Token != nil {
		tok, err := d.c.cfg.Token(req.Context())
		if err != nil {
			return nil, &Error{Code: CodeUnauthenticated, Message: "token: " + err.Error()}
		}
		cred = tok
	}
	if cred != "" {
		req.Header.Set("Authorization", "Bearer "+cred)
	}
	return d.c.cfg.HTTPClient.Do(req)
}
