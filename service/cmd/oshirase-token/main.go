// Command oshirase-token prints an HS256 token for trying oshirase locally:
//
//	go run ./service/cmd/oshirase-token -secret dev-secret -sub bob -tenant acme
//
// Flags default to JWT_SECRET, JWT_ISSUER and JWT_AUDIENCE, so the command
// mints what services started with the same environment accept.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("oshirase-token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	secret := fs.String("secret", getenv("JWT_SECRET"), "HMAC secret (env JWT_SECRET)")
	sub := fs.String("sub", "", "user id (sub claim)")
	tenant := fs.String("tenant", "", "tenant claim")
	store := fs.String("store", "", "store claim (optional)")
	roles := fs.String("roles", "", "comma-separated roles, e.g. publisher or platform")
	ttl := fs.Duration("ttl", time.Hour, "lifetime of the token")
	iss := fs.String("iss", getenv("JWT_ISSUER"), "iss claim (env JWT_ISSUER)")
	aud := fs.String("aud", getenv("JWT_AUDIENCE"), "aud claim (env JWT_AUDIENCE)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *secret == "" || *ttl <= 0 || (*sub == "" && *roles == "") {
		fmt.Fprintln(stderr, "oshirase-token: need -secret (or JWT_SECRET), a positive -ttl, and -sub (or -roles)")
		fs.Usage()
		return 2
	}
	now := time.Now()
	claims := jwt.MapClaims{"iat": now.Unix(), "exp": now.Add(*ttl).Unix()}
	for name, v := range map[string]string{"sub": *sub, "tenant": *tenant, "store": *store, "iss": *iss, "aud": *aud} {
		if v != "" {
			claims[name] = v
		}
	}
	if *roles != "" {
		claims["roles"] = strings.Split(*roles, ",")
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(*secret))
	if err != nil {
		fmt.Fprintln(stderr, "oshirase-token:", err)
		return 1
	}
	fmt.Fprintln(stdout, tok)
	return 0
}
