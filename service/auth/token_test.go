package auth_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/oshirase/oshirase/service/auth"
)

func TestTokenFromInitPayload(t *testing.T) {
	tests := []struct {
		name    string
		payload map[string]any
		want    string
	}{
		{"nil", nil, ""},
		{"empty", map[string]any{}, ""},
		{"Authorization bearer", map[string]any{"Authorization": "Bearer abc"}, "abc"},
		{"authorization lower", map[string]any{"authorization": "bearer abc"}, "abc"},
		{"no prefix", map[string]any{"Authorization": "abc"}, "abc"},
		{"authToken", map[string]any{"authToken": " abc "}, "abc"},
		{"Authorization wins", map[string]any{"Authorization": "Bearer a", "authToken": "b"}, "a"},
		{"empty Authorization falls through", map[string]any{"Authorization": "", "authToken": "b"}, "b"},
		{"other scheme ignored", map[string]any{"Authorization": "Basic dXNlcg==", "authToken": "b"}, "b"},
		{"bare Bearer", map[string]any{"Authorization": "Bearer "}, ""},
		{"not a string", map[string]any{"Authorization": 42, "authToken": []string{"x"}}, ""},
		{"nested headers", map[string]any{"headers": map[string]any{"Authorization": "Bearer abc"}}, "abc"},
		{"top level wins over headers", map[string]any{"authToken": "a", "headers": map[string]any{"Authorization": "Bearer b"}}, "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := auth.TokenFromInitPayload(tt.payload); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestTokenFromRequest(t *testing.T) {
	req := func(auth string, cookie *http.Cookie) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		if cookie != nil {
			r.AddCookie(cookie)
		}
		return r
	}
	c := &http.Cookie{Name: "osh", Value: "from-cookie"}
	tests := []struct {
		name   string
		r      *http.Request
		cookie string
		want   string
	}{
		{"nil request", nil, "osh", ""},
		{"header", req("Bearer abc", nil), "", "abc"},
		{"scheme case-insensitive", req("BEARER abc", nil), "", "abc"},
		{"header wins over cookie", req("Bearer abc", c), "osh", "abc"},
		{"cookie", req("", c), "osh", "from-cookie"},
		{"other scheme falls back to cookie", req("Basic dXNlcg==", c), "osh", "from-cookie"},
		{"cookie ignored without a name", req("", c), "", ""},
		{"other cookie name", req("", c), "session", ""},
		{"no bearer, no cookie", req("Bearer", nil), "osh", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := auth.TokenFromRequest(tt.r, tt.cookie); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}
