// Package logging builds the services' slog loggers and throttles
// repeated log lines.
package logging

import (
	"context"
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"strings"

	"github.com/redis/go-redis/v9"
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

// RouteLibraryLogs sends what libraries print on their own through log,
// as warnings, so that every line a service writes has its format: the
// standard library's log package (gqlgen's transports print there) and
// go-redis's logger (a flood while Redis is down, so at most one line a
// second). main calls it once, before anything runs.
func RouteLibraryLogs(log *slog.Logger) {
	std := slog.NewLogLogger(log.With("component", "log").Handler(), slog.LevelWarn)
	stdlog.SetFlags(0)
	stdlog.SetPrefix("")
	stdlog.SetOutput(std.Writer())
	redis.SetLogger(&redisLogger{log: log.With("component", "go-redis")})
}

// redisLogger is go-redis's Logging on slog.
type redisLogger struct {
	log      *slog.Logger
	throttle Throttle
}

func (l *redisLogger) Printf(_ context.Context, format string, v ...any) {
	ok, held := l.throttle.Allow()
	if !ok {
		return
	}
	l.log.Warn("redis client", "detail", strings.TrimSpace(fmt.Sprintf(format, v...)), "not_logged_since_last", held)
}
