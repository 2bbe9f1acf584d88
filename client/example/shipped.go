// Package example is the Go client's example in the README: a backend
// telling everyone concerned that an order shipped. dev/e2e runs it
// against the real binaries, also across a Redis restart.
package example

import (
	"context"
	"fmt"

	"github.com/oshirase/oshirase/client"
)

// NewClient returns a client of pub at pubURL (e.g.
// http://localhost:8080/query) with apiKey, one of pub's
// PUBLISHER_API_KEYS ("" with AUTH_MODE=none). It retries timeouts and
// UNAVAILABLE 5 times, waiting 0.2s, 0.4s, … in between.
func NewClient(pubURL, apiKey string) *client.Client {
	return client.New(client.Config{URL: pubURL, APIKey: apiKey})
}

// OrderShipped tells the customer and the staff of the order's store that
// order id shipped. Safe to call again after a failure or a crash: the
// idempotency keys name the change, so a notice already sent is not sent
// twice.
func OrderShipped(ctx context.Context, c *client.Client, id, customer, store string) (client.Result, error) {
	// One notice. Timeouts and UNAVAILABLE are retried with the same key.
	res, err := c.SendNotification(ctx, customer, "Your order "+id+" has shipped",
		client.WithIdempotencyKey("order-"+id+"-shipped"))
	if err != nil {
		return client.Result{}, err
	}

	// Many notices in one call, of any scopes; each has its own result.
	results, err := c.PublishBatch(ctx, []client.Notice{
		{Scope: client.Store, To: store, Text: "Order " + id + " left the warehouse", IdempotencyKey: "order-" + id + "-store"},
		{Scope: client.Company, Text: "Another order shipped", IdempotencyKey: "order-" + id + "-company"},
	})
	if err != nil {
		return client.Result{}, err
	}
	for _, r := range results {
		if r.Err != nil {
			return client.Result{}, fmt.Errorf("order %s: %w", id, r.Err)
		}
	}
	return res, nil
}
