package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/oshirase/oshirase/service/auth"
)

func TestRun(t *testing.T) {
	env := map[string]string{"JWT_SECRET": "dev-secret", "JWT_AUDIENCE": "oshirase"}
	getenv := func(k string) string { return env[k] }
	v, err := auth.NewVerifier(t.Context(), auth.Config{HMACSecret: []byte("dev-secret"), Audience: "oshirase"})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()

	tests := []struct {
		args []string
		want auth.Identity
	}{
		{[]string{"-sub", "bob", "-tenant", "acme", "-store", "s1"}, auth.Identity{User: "bob", Tenant: "acme", Store: "s1"}},
		{[]string{"-sub", "svc", "-tenant", "acme", "-roles", "publisher"}, auth.Identity{User: "svc", Tenant: "acme", Publisher: true}},
		{[]string{"-roles", "platform", "-ttl", "5m"}, auth.Identity{Publisher: true, Platform: true}},
	}
	for _, tt := range tests {
		var out, errOut bytes.Buffer
		if code := run(tt.args, getenv, &out, &errOut); code != 0 {
			t.Fatalf("%v: exit %d: %s", tt.args, code, errOut.String())
		}
		id, err := v.Verify(t.Context(), strings.TrimSpace(out.String()))
		if err != nil {
			t.Fatalf("%v: %v", tt.args, err)
		}
		if time.Until(id.ExpiresAt) <= 0 {
			t.Fatalf("%v: already expired: %v", tt.args, id.ExpiresAt)
		}
		id.ExpiresAt = time.Time{}
		if id != tt.want {
			t.Fatalf("%v: identity %+v, want %+v", tt.args, id, tt.want)
		}
	}
}

func TestRunUsageErrors(t *testing.T) {
	none := func(string) string { return "" }
	for _, args := range [][]string{
		{"-sub", "bob"},  // no secret
		{"-secret", "s"}, // no sub or roles
		{"-secret", "s", "-sub", "b", "-ttl", "-1h"}, // bad ttl
		{"-nope"},
	} {
		var out, errOut bytes.Buffer
		if code := run(args, none, &out, &errOut); code != 2 || out.Len() != 0 {
			t.Errorf("%v: exit %d, stdout %q", args, code, out.String())
		}
	}
}
