package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"strings"
)

// PlatformTenant in an API key spec makes the key a platform credential.
const PlatformTenant = "*"

// APIKeys are static publisher credentials from configuration. The zero
// value holds no key. Its String and LogValue never reveal a key.
type APIKeys struct {
	keys []apiKey
}

type apiKey struct {
	sum [sha256.Size]byte // keys are compared by digest: equal length, no length leak
	id  Identity
}

// ParseAPIKeys reads a spec "key1:tenantA,key2:*": comma-separated entries,
// each a key and, after its last colon, the tenant it publishes for, or "*"
// for a platform key (any tenant and the public channel). Spaces around
// entries are ignored; an empty spec gives no keys. Errors name an entry by
// position, never by its key. Use long random keys (32+ bytes).
func ParseAPIKeys(spec string) (APIKeys, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return APIKeys{}, nil
	}
	var k APIKeys
	seen := make(map[[sha256.Size]byte]bool)
	for i, entry := range strings.Split(spec, ",") {
		n := i + 1
		entry = strings.TrimSpace(entry)
		colon := strings.LastIndexByte(entry, ':')
		if colon < 0 {
			return APIKeys{}, fmt.Errorf("auth: API key entry %d: want key:tenant or key:*", n)
		}
		key, tenant := entry[:colon], entry[colon+1:]
		if key == "" {
			return APIKeys{}, fmt.Errorf("auth: API key entry %d: empty key", n)
		}
		if strings.ContainsFunc(key, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
			return APIKeys{}, fmt.Errorf("auth: API key entry %d: key has spaces or control characters", n)
		}
		id := Identity{Publisher: true}
		if tenant == PlatformTenant {
			id.Platform = true
		} else if why := checkValue(tenant); why != "" {
			return APIKeys{}, fmt.Errorf("auth: API key entry %d: tenant %s", n, why)
		} else {
			id.Tenant = tenant
		}
		sum := sha256.Sum256([]byte(key))
		if seen[sum] {
			return APIKeys{}, fmt.Errorf("auth: API key entry %d: key repeats an earlier entry", n)
		}
		seen[sum] = true
		k.keys = append(k.keys, apiKey{sum: sum, id: id})
	}
	return k, nil
}

// Lookup returns the identity of key. It compares against every configured
// key in constant time, without stopping at a match, so timing reveals
// neither which key matched nor how much of one did.
func (k APIKeys) Lookup(key string) (Identity, bool) {
	if key == "" {
		return Identity{}, false
	}
	sum := sha256.Sum256([]byte(key))
	found, at := 0, 0
	for i := range k.keys {
		eq := subtle.ConstantTimeCompare(sum[:], k.keys[i].sum[:])
		at = subtle.ConstantTimeSelect(eq, i, at)
		found |= eq
	}
	if found == 0 {
		return Identity{}, false
	}
	return k.keys[at].id, true
}

// Len is the number of keys.
func (k APIKeys) Len() int { return len(k.keys) }

// String describes the set without revealing any key.
func (k APIKeys) String() string { return fmt.Sprintf("APIKeys(%d)", len(k.keys)) }

// LogValue implements slog.LogValuer, without revealing any key.
func (k APIKeys) LogValue() slog.Value { return slog.IntValue(len(k.keys)) }
