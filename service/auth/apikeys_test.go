package auth_test

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/oshirase/oshirase/service/auth"
)

func TestParseAPIKeys(t *testing.T) {
	tests := []struct {
		spec    string
		wantLen int
		wantErr string
	}{
		{"", 0, ""},
		{"   ", 0, ""},
		{"key1:tenantA", 1, ""},
		{"key1:tenantA, key2:* ,key3:株式会社", 3, ""},
		{"a:b:tenantA", 1, ""}, // the tenant follows the last colon
		{"key1", 0, "entry 1: want key:tenant"},
		{"key1:tenantA,", 0, "entry 2: want key:tenant"},
		{"key1:a,,key2:b", 0, "entry 2: want key:tenant"},
		{":tenantA", 0, "entry 1: empty key"},
		{"key1:", 0, "entry 1: tenant empty"},
		{"key1:a,key1:b", 0, "entry 2: key repeats"},
		{"ke y:a", 0, "entry 1: key has spaces"},
		{"key\x01:a", 0, "entry 1: key has spaces or control"},
		{"key1:ten\x7fant", 0, "entry 1: tenant has control characters"},
		{"key1:ac\xffme", 0, "entry 1: tenant not UTF-8"},
		{"key1:" + strings.Repeat("t", auth.MaxClaimBytes+1), 0, "entry 1: tenant too long"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.spec), func(t *testing.T) {
			k, err := auth.ParseAPIKeys(tt.spec)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "key1") {
					t.Fatalf("error reveals a key: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if k.Len() != tt.wantLen {
				t.Fatalf("Len = %d, want %d", k.Len(), tt.wantLen)
			}
		})
	}
}

func TestAPIKeysLookup(t *testing.T) {
	k, err := auth.ParseAPIKeys("k-acme:acme, k-platform:*, a:b:globex")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		key  string
		want auth.Identity
		ok   bool
	}{
		{"k-acme", auth.Identity{Tenant: "acme", Publisher: true}, true},
		{"k-platform", auth.Identity{Publisher: true, Platform: true}, true},
		{"a:b", auth.Identity{Tenant: "globex", Publisher: true}, true},
		{"", auth.Identity{}, false},
		{"k-acm", auth.Identity{}, false},
		{"k-acme ", auth.Identity{}, false},
		{"K-ACME", auth.Identity{}, false},
		{"*", auth.Identity{}, false},
		{"acme", auth.Identity{}, false},
	}
	for _, tt := range tests {
		id, ok := k.Lookup(tt.key)
		if ok != tt.ok || id != tt.want {
			t.Errorf("Lookup(%q) = %+v, %v; want %+v, %v", tt.key, id, ok, tt.want, tt.ok)
		}
	}
	var zero auth.APIKeys
	if _, ok := zero.Lookup("k-acme"); ok {
		t.Error("zero APIKeys matched")
	}
}

func TestAPIKeysDoNotPrint(t *testing.T) {
	k, err := auth.ParseAPIKeys("s3cret-value:acme")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("cfg", "keys", k)
	out := fmt.Sprint(k) + fmt.Sprintf("%v %+v %s", k, k, k) + b.String()
	if strings.Contains(out, "s3cret") {
		t.Fatalf("key printed: %s", out)
	}
}
