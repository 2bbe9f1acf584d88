package wire

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Scope says whom a notice is for.
type Scope string

const (
	ScopePerson  Scope = "person"  // one user of a tenant
	ScopeStore   Scope = "store"   // every user of one store of a tenant
	ScopeCompany Scope = "company" // every user of a tenant
	ScopePublic  Scope = "public"  // everyone, every tenant
)

// scopeCodes are the one-letter codes scopes have inside channel names.
var scopeCodes = map[Scope]string{
	ScopePerson:  "p",
	ScopeStore:   "s",
	ScopeCompany: "c",
	ScopePublic:  "a",
}

// Valid reports whether s is one of the defined scopes.
func (s Scope) Valid() bool {
	_, ok := scopeCodes[s]
	return ok
}

// MaxNameBytes is the longest tenant, store or user name accepted.
const MaxNameBytes = 256

// ErrInvalidName is wrapped by every error about an unusable name.
var ErrInvalidName = errors.New("invalid name")

// ValidateName checks a tenant, store or user name: non-empty, valid UTF-8,
// no control or invisible formatting characters, at most max bytes (max <= 0
// means MaxNameBytes). Look-alike characters are allowed: names are compared
// byte for byte, so "bob" and "bоb" (Cyrillic о) stay distinct users.
func ValidateName(kind, name string, max int) error {
	if max <= 0 {
		max = MaxNameBytes
	}
	// if, not a tagless switch: gremlins v0.6.0 cannot see a switch's case
	// conditions as covered (go-gremlins/gremlins#298), and these are
	// mutation tested (docs/mutation.md).
	if name == "" {
		return fmt.Errorf("%w: %s is empty", ErrInvalidName, kind)
	}
	if len(name) > max {
		return fmt.Errorf("%w: %s is %d bytes, the limit is %d", ErrInvalidName, kind, len(name), max)
	}
	if !utf8.ValidString(name) {
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalidName, kind)
	}
	for _, r := range name {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return fmt.Errorf("%w: %s contains the control character %U", ErrInvalidName, kind, r)
		}
	}
	return nil
}

// Channel is the Redis Pub/Sub channel of one audience. Build it with
// NewChannel or PublicChannel; parse it with ParseChannel.
//
// The layout is "oshirase:v1:{<tenant>/<scope>/<id>}" where tenant and id are
// escaped (see escape): the encoding is injective, so no tenant or user name
// can spell another audience's channel, and the braces form the Redis Cluster
// hash tag shared by every key of this channel.
type Channel string

const (
	channelPrefix = "oshirase:v1:"
	countPrefix   = "oshirase:v1:count:"
	historyPrefix = "oshirase:v1:hist:"
	metaPrefix    = "oshirase:v1:meta:"
	idemPrefix    = "oshirase:v1:idem:"
)

// NewChannel returns the channel of (tenant, scope, id). For ScopeCompany the
// id is ignored (a company's channel is the tenant's); for ScopePublic both
// tenant and id are ignored.
func NewChannel(tenant string, scope Scope, id string) (Channel, error) {
	switch scope {
	case ScopePublic:
		return PublicChannel(), nil
	case ScopeCompany:
		id = ""
	case ScopePerson, ScopeStore:
		if err := ValidateName(string(scope), id, 0); err != nil {
			return "", err
		}
	default:
		return "", fmt.Errorf("%w: unknown scope %q", ErrInvalidName, scope)
	}
	if err := ValidateName("tenant", tenant, 0); err != nil {
		return "", err
	}
	var b strings.Builder
	b.Grow(len(channelPrefix) + len(tenant) + len(id) + 8)
	b.WriteString(channelPrefix)
	b.WriteByte('{')
	escape(&b, tenant)
	b.WriteByte('/')
	b.WriteString(scopeCodes[scope])
	if scope != ScopeCompany {
		b.WriteByte('/')
		escape(&b, id)
	}
	b.WriteByte('}')
	return Channel(b.String()), nil
}

// PersonChannel is NewChannel(tenant, ScopePerson, user).
func PersonChannel(tenant, user string) (Channel, error) {
	return NewChannel(tenant, ScopePerson, user)
}

// DemoTenant is the one tenant of AUTH_MODE=none, where callers are
// trusted: both services name its channels with it.
const DemoTenant = "default"

// PublicChannel is the channel of announcements to everyone.
func PublicChannel() Channel { return Channel(channelPrefix + "{a}") }

// CountKey is the Redis hash holding, per sub instance, how many live
// subscriptions read this channel (the bus keeps it; see bus/lua).
func (c Channel) CountKey() string {
	return countPrefix + strings.TrimPrefix(string(c), channelPrefix)
}

// HistoryKey is the Redis stream holding this channel's recent notices, in
// publish order (the bus appends to it in the same step as the PUBLISH).
func (c Channel) HistoryKey() string {
	return historyPrefix + strings.TrimPrefix(string(c), channelPrefix)
}

// MetaKey is the small Redis hash beside the history: its epoch (a random
// name that changes whenever the history starts over, e.g. after Redis lost
// its data) and the id of the last notice appended.
func (c Channel) MetaKey() string {
	return metaPrefix + strings.TrimPrefix(string(c), channelPrefix)
}

// MaxIdempotencyKeyBytes is the longest idempotency key a publisher may
// send.
const MaxIdempotencyKeyBytes = 128

// IdempotencyKey is the Redis hash that remembers one idempotent publish
// to this channel: "oshirase:v1:idem:{<channel>}:<publisher>:<key>". It
// sits in the channel's hash slot, so the bus decides "first time or
// retry" in the same atomic script as the publish, also on Redis Cluster.
// publisher names the credential (a fixed-length digest, no ':'), so two
// publishers' keys never meet; key is the publisher's own, checked with
// ValidateName(…, MaxIdempotencyKeyBytes) by the caller.
func (c Channel) IdempotencyKey(publisher, key string) string {
	return idemPrefix + strings.TrimPrefix(string(c), channelPrefix) + ":" + publisher + ":" + key
}

// ParseChannel splits a channel name back into tenant, scope and id. Only
// the one name NewChannel builds for them is accepted: a name with a byte
// left unescaped, a lower-case escape or an invalid tenant or id is not an
// oshirase channel.
func ParseChannel(s string) (tenant string, scope Scope, id string, err error) {
	tenant, scope, id, err = parseChannel(s)
	if err != nil {
		return "", "", "", err
	}
	if c, err := NewChannel(tenant, scope, id); err != nil || string(c) != s {
		return "", "", "", fmt.Errorf("wire: %q is not a canonical oshirase channel", s)
	}
	return tenant, scope, id, nil
}

func parseChannel(s string) (tenant string, scope Scope, id string, err error) {
	rest, ok := strings.CutPrefix(s, channelPrefix)
	if !ok || len(rest) < 3 || rest[0] != '{' || rest[len(rest)-1] != '}' {
		return "", "", "", fmt.Errorf("wire: %q is not an oshirase channel", s)
	}
	parts := strings.Split(rest[1:len(rest)-1], "/")
	if len(parts) == 1 && parts[0] == "a" {
		return "", ScopePublic, "", nil
	}
	if len(parts) < 2 {
		return "", "", "", fmt.Errorf("wire: %q is not an oshirase channel", s)
	}
	if tenant, err = unescape(parts[0]); err != nil {
		return "", "", "", err
	}
	if parts[1] == "c" && len(parts) == 2 {
		return tenant, ScopeCompany, "", nil
	}
	if (parts[1] == "p" || parts[1] == "s") && len(parts) == 3 {
		if id, err = unescape(parts[2]); err != nil {
			return "", "", "", err
		}
		scope = ScopePerson
		if parts[1] == "s" {
			scope = ScopeStore
		}
		return tenant, scope, id, nil
	}
	return "", "", "", fmt.Errorf("wire: %q is not an oshirase channel", s)
}

// escape writes s with every byte outside [A-Za-z0-9._~-] percent-encoded.
// '%' itself is encoded, so the result is injective, and none of the bytes
// that mean something to Redis (braces, '*', '?', '[', ':', '/', spaces,
// newlines) can appear unescaped.
func escape(b *strings.Builder, s string) {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '.' || c == '_' || c == '~' || c == '-' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
}

func unescape(s string) (string, error) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			out = append(out, s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", fmt.Errorf("wire: bad escape in %q", s)
		}
		hi, lo := unhex(s[i+1]), unhex(s[i+2])
		if hi < 0 || lo < 0 {
			return "", fmt.Errorf("wire: bad escape in %q", s)
		}
		out = append(out, byte(hi<<4|lo))
		i += 2
	}
	return string(out), nil
}

func unhex(c byte) int {
	if '0' <= c && c <= '9' {
		return int(c - '0')
	}
	if 'A' <= c && c <= 'F' {
		return int(c-'A') + 10
	}
	return -1
}
