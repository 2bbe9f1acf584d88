// Package demo serves /demo: one self-contained page, embedded in the
// binary, that subscribes to a user's notices over graphql-transport-ws
// and sends notices through pub. It loads nothing from anywhere else.
package demo

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"fmt"
	"net/http"
	"regexp"
	"time"
)

//go:embed index.html
var page []byte

// Handler serves the page. Its Content-Security-Policy allows exactly the
// page's own inline script and style, and connections anywhere (the pub
// URL is the user's to choose).
func Handler() http.Handler {
	csp := fmt.Sprintf("default-src 'none'; script-src %s; style-src %s; connect-src http: https: ws: wss:; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
		inlineHash("script"), inlineHash("style"))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		http.ServeContent(w, r, "demo.html", time.Time{}, bytes.NewReader(page))
	})
}

// inlineHash is the CSP source for the page's one inline element of tag.
func inlineHash(tag string) string {
	m := regexp.MustCompile(`(?s)<` + tag + `>(.*?)</` + tag + `>`).FindSubmatch(page)
	if m == nil {
		panic("demo: index.html has no <" + tag + ">")
	}
	sum := sha256.Sum256(m[1])
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}
