// Package logging builds the services' slog loggers and throttles
// repeated log lines.
package logging

import (
	"io"
	"log/slog"
	"strings"
)

// NewLogger returns a logger writing format ("text" or "json") at level
// ("debug", "info", "warn", "error") to w.
func NewLogger(w io.Writer, format, level string) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(strings.ToUpper(level)))
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
