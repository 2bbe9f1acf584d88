// Package envconf reads the environment both services share: the typed
// variable reader that reports every invalid value at once, the variables
// every service reads (Common), REDIS_URL and AUTH_MODE. Only a
// service's own config package and main read the environment.
package envconf

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Env reads configuration from environment variables and collects every
// problem, so that a misconfigured service names all of them at once.
type Env struct {
	lookup func(string) (string, bool)
	errs   []error
}

// NewEnv reads from lookup; nil means os.LookupEnv.
func NewEnv(lookup func(string) (string, bool)) *Env {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	return &Env{lookup: lookup}
}

// Err reports every invalid value read so far.
func (e *Env) Err() error { return errors.Join(e.errs...) }

func (e *Env) get(name string) (string, bool) {
	v, ok := e.lookup(name)
	v = strings.TrimSpace(v)
	return v, ok && v != ""
}

// Fail records a problem with a variable found by the caller's own checks.
func (e *Env) Fail(name, format string, args ...any) {
	e.errs = append(e.errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
}

// String returns the variable or def when unset or empty.
func (e *Env) String(name, def string) string {
	if v, ok := e.get(name); ok {
		return v
	}
	return def
}

// OneOf returns the variable, which must be one of allowed, or def.
func (e *Env) OneOf(name, def string, allowed ...string) string {
	v := e.String(name, def)
	for _, a := range allowed {
		if strings.EqualFold(v, a) {
			return a
		}
	}
	e.Fail(name, "must be one of %s (got %q)", strings.Join(allowed, ", "), v)
	return def
}

// Int returns the variable as an integer in [min, max], or def.
func (e *Env) Int(name string, def, min, max int) int {
	v, ok := e.get(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > max {
		e.Fail(name, "must be an integer from %d to %d (got %q)", min, max, v)
		return def
	}
	return n
}

// Float returns the variable as a number (like 2 or 0.5) in [min, max],
// or def.
func (e *Env) Float(name string, def, min, max float64) float64 {
	v, ok := e.get(name)
	if !ok {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f != f || f < min || f > max {
		e.Fail(name, "must be a number from %g to %g (got %q)", min, max, v)
		return def
	}
	return f
}

// Bytes returns a size such as 4096, 4KiB or 1MiB in [min, max], or def.
func (e *Env) Bytes(name string, def, min, max int) int {
	v, ok := e.get(name)
	if !ok {
		return def
	}
	mult := 1
	num := v
	for _, u := range []struct {
		suffix string
		mult   int
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"KB", 1000}, {"MB", 1000 * 1000}, {"B", 1}} {
		if s, ok := strings.CutSuffix(v, u.suffix); ok {
			num, mult = strings.TrimSpace(s), u.mult
			break
		}
	}
	n, err := strconv.Atoi(num)
	if err != nil || n*mult < min || n*mult > max {
		e.Fail(name, "must be a size from %d to %d bytes, like 4096 or 4KiB (got %q)", min, max, v)
		return def
	}
	return n * mult
}

// Duration returns the variable as a Go duration (like 10s, 500ms) in
// [min, max], or def.
func (e *Env) Duration(name string, def, min, max time.Duration) time.Duration {
	v, ok := e.get(name)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < min || d > max {
		e.Fail(name, "must be a duration from %s to %s, like 10s or 500ms (got %q)", min, max, v)
		return def
	}
	return d
}

// Bool returns the variable as a boolean (true/false/1/0), or def.
func (e *Env) Bool(name string, def bool) bool {
	v, ok := e.get(name)
	if !ok {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		e.Fail(name, "must be true or false (got %q)", v)
		return def
	}
	return b
}

// List returns the comma-separated variable with blanks dropped, or def.
func (e *Env) List(name string, def []string) []string {
	v, ok := e.get(name)
	if !ok {
		return def
	}
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Port reads a TCP port; 0 means "any free port" and is allowed.
func (e *Env) Port(name string, def int) int { return e.Int(name, def, 0, 65535) }
