// Command oshirase-publish sends one notice through pub, for scripts and
// operators:
//
//	oshirase-publish --to bob --text 'Your order has shipped'
//	oshirase-publish --store s1 --text 'Inventory count at 5pm' --key "$OSHIRASE_API_KEY"
//	oshirase-publish --company --tenant acme --text 'Office closed Friday' --idempotency-key closure-2026-12-04
//
// It prints the result as JSON ({"receivedUsers":1,"id":"…","timestamp":…})
// and exits 0; 1 when pub refused or could not publish (the error's code
// on stderr), 2 for bad flags. Retries after a timeout or UNAVAILABLE are
// safe: every call carries an idempotency key (--idempotency-key, or one
// made up for the call).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/oshirase/oshirase/client"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("oshirase-publish", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", envOr("OSHIRASE_URL", "http://localhost:8080/query"), "pub's GraphQL endpoint (env OSHIRASE_URL)")
	key := fs.String("key", os.Getenv("OSHIRASE_API_KEY"), "API key or publisher token, sent as a bearer credential (env OSHIRASE_API_KEY)")
	to := fs.String("to", "", "a user: a personal notice")
	store := fs.String("store", "", "a store: everyone in it")
	company := fs.Bool("company", false, "everyone in the tenant")
	public := fs.Bool("public", false, "everyone (platform credentials only)")
	tenant := fs.String("tenant", "", "the tenant to address (default: the credential's own; platform credentials only)")
	text := fs.String("text", "", "the notice's text (required)")
	idem := fs.String("idempotency-key", "", "the same key again (within pub's IDEMPOTENCY_TTL) publishes nothing and answers the first publish")
	timeout := fs.Duration("timeout", 30*time.Second, "give up after this long, retries included")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	n := client.Notice{Tenant: *tenant, Text: *text, IdempotencyKey: *idem}
	chosen := 0
	if *to != "" {
		n.Scope, n.To = client.Person, *to
		chosen++
	}
	if *store != "" {
		n.Scope, n.To = client.Store, *store
		chosen++
	}
	if *company {
		n.Scope = client.Company
		chosen++
	}
	if *public {
		n.Scope = client.Public
		chosen++
	}
	switch {
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "oshirase-publish: unexpected arguments %q\n", fs.Args())
		return 2
	case chosen != 1:
		fmt.Fprintln(stderr, "oshirase-publish: name exactly one audience: --to, --store, --company or --public")
		return 2
	case *text == "":
		fmt.Fprintln(stderr, "oshirase-publish: --text is required")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	c := client.New(client.Config{URL: *url, APIKey: *key})
	res, err := c.Publish(ctx, n)
	if err != nil {
		var e *client.Error
		if errors.As(err, &e) && e.Code != "" {
			fmt.Fprintf(stderr, "oshirase-publish: %s: %s\n", e.Code, e.Message)
		} else {
			fmt.Fprintf(stderr, "oshirase-publish: %v\n", err)
		}
		return 1
	}
	_ = json.NewEncoder(stdout).Encode(map[string]any{"receivedUsers": res.ReceivedUsers, "id": res.ID, "timestamp": res.Timestamp.Unix()})
	return 0
}

func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}
