// Package logtest records what code logs through log/slog, for tests that
// check a line was (or was not) written.
package logtest

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Record is one logged record: its level, its message and its "err"
// attribute ("" when it has none).
type Record struct {
	Level   slog.Level
	Message string
	Err     string
}

// String is "LEVEL message", with the err attribute when there is one.
func (r Record) String() string {
	s := r.Level.String() + " " + r.Message
	if r.Err != "" {
		s += " err=" + r.Err
	}
	return s
}

// Recorder is a slog.Handler that keeps every record; attributes added by
// With and groups are not kept. Use it as slog.New(rec). Safe for
// concurrent use.
type Recorder struct {
	mu   sync.Mutex
	recs []Record
}

var _ slog.Handler = (*Recorder)(nil)

func (r *Recorder) Enabled(context.Context, slog.Level) bool { return true }

func (r *Recorder) Handle(_ context.Context, rec slog.Record) error {
	kept := Record{Level: rec.Level, Message: rec.Message}
	rec.Attrs(func(a slog.Attr) bool {
		if a.Key == "err" {
			kept.Err = a.Value.String()
		}
		return true
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, kept)
	return nil
}

func (r *Recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *Recorder) WithGroup(string) slog.Handler      { return r }

// Records returns every record kept so far.
func (r *Recorder) Records() []Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.recs)
}

// Count is how many records so far contain s in "LEVEL message".
func (r *Recorder) Count(s string) int {
	n := 0
	for _, rec := range r.Records() {
		if strings.Contains(rec.Level.String()+" "+rec.Message, s) {
			n++
		}
	}
	return n
}

// Has reports whether a record with message msg had an err attribute
// containing s.
func (r *Recorder) Has(msg, s string) bool {
	for _, rec := range r.Records() {
		if rec.Message == msg && strings.Contains(rec.Err, s) {
			return true
		}
	}
	return false
}

// WaitFor waits up to 5s for a record containing s (as Count reads them),
// and fails the test with everything logged otherwise.
func (r *Recorder) WaitFor(t testing.TB, s string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for r.Count(s) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no log record %q within 5s; got %s", s, r)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// String lists every record kept, one a line.
func (r *Recorder) String() string {
	var b strings.Builder
	for _, rec := range r.Records() {
		fmt.Fprintln(&b, rec)
	}
	return b.String()
}
