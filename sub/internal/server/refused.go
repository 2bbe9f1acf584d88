package server

import (
	"log/slog"
	"net/http"
	"strings"

	"github.com/oshirase/oshirase/service/logging"
)

// logRefused logs the WebSocket upgrades and SSE requests that next
// answers with an error status instead of a stream (an origin not on the
// list, a missing or bad credential, a limit, a broken handshake):
// connections refused before they are open. A flood of them (a client
// retrying in a loop, a full instance) must not flood the log: at most one
// line a second per status, with how many were held back since. Other
// requests pass as they are.
func logRefused(log *slog.Logger, next http.Handler) http.Handler {
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "transport")
	var logged [200]logging.Throttle // by status, 400 to 599
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kind := ""
		switch {
		case r.Header.Get("Upgrade") != "":
			kind = "websocket"
		case r.Method == http.MethodPost && strings.Contains(r.Header.Get("Accept"), "text/event-stream"):
			kind = "sse"
		default:
			next.ServeHTTP(w, r)
			return
		}
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		if sw.status < http.StatusBadRequest {
			return
		}
		if ok, held := logged[min(sw.status, 599)-400].Allow(); ok {
			log.Info("connection refused", "status", sw.status, "reason", http.StatusText(sw.status),
				"protocol", kind, "origin", r.Header.Get("Origin"), "remote", r.RemoteAddr, "not_logged_since_last", held)
		}
	})
}

// statusWriter remembers the status of the response; Unwrap lets the
// stream take the connection over (http.ResponseController).
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
