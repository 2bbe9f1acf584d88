// Package cursor owns the opaque cursors sub hands out: a place in the
// merged history of every channel one subscription reads (a person's own
// channel, their store's, their company's, the public one), with each
// history's epoch, bound to those channels so that a cursor is only ever
// read back against the audience it was made for.
//
// A cursor holds, per channel, a position: every notice of that channel up
// to and including its id was seen. It also names the channel of the notice
// it was made for ("at"). Resuming after a cursor reads, on every channel,
// what came after its position; reading older notices reads, on every
// channel, what is at or before its position — except on "at", where the
// cursor's own notice is left out.
//
// Across channels, notices are ordered by (stream id, channel kind): a
// total order every reader of the same histories agrees on (Before).
//
// The text form is base64url (no padding) of: a version byte, "at" (the
// number of channels when the cursor was made for no notice), the
// number of channels, then per channel its kind, a short hash of its full
// name, its epoch and its stream id (two uvarints), and a 4-byte checksum.
// The hash binds the cursor to the audience: another user's or tenant's
// cursor does not match. The checksum refuses a cursor changed in transit;
// it is no secret, and needs none: a cursor only ever selects among
// notices its holder may read anyway.
package cursor

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/oshirase/oshirase/bus"
	"github.com/oshirase/oshirase/service/errkind"
	"github.com/oshirase/oshirase/wire"
)

// MaxLen is the longest cursor text Decode reads; longer ones are refused
// before any decoding.
const MaxLen = 512

const (
	version     = 1
	hashLen     = 4
	sumLen      = 4
	maxChannels = 4 // one of each kind
	maxEpoch    = 64
)

var (
	// ErrMalformed: the text is not a cursor sub made. Reported as bad input.
	ErrMalformed = fmt.Errorf("cursor: %w: not a valid cursor", errkind.ErrBadInput)
	// ErrForeign: a cursor made for another user or tenant.
	ErrForeign = fmt.Errorf("cursor: %w: the cursor belongs to another audience", errkind.ErrForbidden)
	// ErrStale: a cursor made for this user when they read other channels
	// (their store changed): it cannot be resumed exactly.
	ErrStale = fmt.Errorf("cursor: %w: the subscriber's channels changed since the cursor was made", errkind.ErrCursorExpired)
)

// Cursor is a decoded cursor, read against the channels of a subscription.
type Cursor struct {
	// Pos holds one position per channel, in the order of the channels it
	// was made or decoded with.
	Pos []bus.Position
	// At is the index of the channel of the notice the cursor was made for,
	// or -1 for a cursor made for no notice (an empty first page's
	// startCursor): then every position is a notice seen.
	At int
}

// Kind orders channels of one subscription on ties of their stream ids:
// person, store, company, public. A subscription reads at most one
// channel of each kind.
func Kind(ch wire.Channel) int {
	_, scope, _, err := wire.ParseChannel(string(ch))
	if err != nil {
		return 0
	}
	switch scope {
	case wire.ScopeStore:
		return 1
	case wire.ScopeCompany:
		return 2
	case wire.ScopePublic:
		return 3
	}
	return 0
}

// Before reports whether notice a on channel kind ka comes before notice b
// on kind kb in the order cursors use across channels.
func Before(a bus.StreamID, ka int, b bus.StreamID, kb int) bool {
	if c := a.Compare(b); c != 0 {
		return c < 0
	}
	return ka < kb
}

// At is the cursor of notice id on chs[at], in a history where, on each
// channel i, epochs[i] is the epoch: on every channel, everything that
// comes before the notice in the order of Before, and the notice itself.
// The positions need not be ids of notices: they are bounds.
func At(chs []wire.Channel, epochs []string, at int, id bus.StreamID) Cursor {
	c := Cursor{Pos: make([]bus.Position, len(chs)), At: at}
	kat := Kind(chs[at])
	for i, ch := range chs {
		c.Pos[i] = bus.Position{Epoch: epochs[i], ID: id}
		if Kind(ch) > kat {
			// Its notices with this very id come after ours. (Not
			// chs[at]: no two channels of a subscription share a kind.)
			c.Pos[i].ID = id.Prev()
		}
	}
	return c
}

// Older returns, per channel, the exclusive upper bound of the notices that
// come before the cursor's own notice (for bus.History.Recent).
func (c Cursor) Older() []bus.Position {
	out := slices.Clone(c.Pos)
	for i := range out {
		if i != c.At {
			out[i].ID = out[i].ID.Next()
		}
	}
	return out
}

// Encode returns the text form of c, made for chs (one per position).
// Channels are written in the order of their kinds, so that one cursor has
// exactly one text form.
func Encode(chs []wire.Channel, c Cursor) string {
	order := make([]int, len(chs))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return Kind(chs[a]) - Kind(chs[b]) })
	// at: the place of the cursor's own notice; len(chs): none.
	at := len(chs)
	if c.At >= 0 {
		at = slices.Index(order, c.At)
	}
	b := make([]byte, 0, base64.RawURLEncoding.DecodedLen(MaxLen)) // the longest cursor Decode reads
	b = append(b, version, byte(at), byte(len(chs)))
	for _, i := range order {
		ch := chs[i]
		h := channelHash(ch)
		b = append(b, byte(Kind(ch)))
		b = append(b, h[:]...)
		b = append(b, byte(len(c.Pos[i].Epoch)))
		b = append(b, c.Pos[i].Epoch...)
		b = binary.AppendUvarint(b, c.Pos[i].ID.MS)
		b = binary.AppendUvarint(b, c.Pos[i].ID.Seq)
	}
	sum := sha256.Sum256(b)
	b = append(b, sum[:sumLen]...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// entry is one channel's part of a cursor as it was encoded.
type entry struct {
	kind int
	hash [hashLen]byte
	pos  bus.Position
}

// Decode reads s against chs, the channels of the subscription that
// presents it. It fails with ErrMalformed (garbage, changed, oversized),
// ErrForeign (made for another user or tenant: its personal or company
// channel is not the subscriber's) or ErrStale (the subscriber's other
// channels changed); the errors say nothing about what the cursor holds.
func Decode(s string, chs []wire.Channel) (Cursor, error) {
	if len(s) > MaxLen || len(s) == 0 {
		return Cursor{}, ErrMalformed
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(raw) < 3+sumLen {
		return Cursor{}, ErrMalformed
	}
	body, sum := raw[:len(raw)-sumLen], raw[len(raw)-sumLen:]
	want := sha256.Sum256(body)
	if !bytes.Equal(sum, want[:sumLen]) || body[0] != version {
		return Cursor{}, ErrMalformed
	}
	at, n := int(body[1]), int(body[2])
	if n == 0 || n > maxChannels || at > n { // at == n: no notice of its own
		return Cursor{}, ErrMalformed
	}
	entries := make([]entry, 0, n)
	rest := body[3:]
	for range n {
		var e entry
		if len(rest) < 2+hashLen {
			return Cursor{}, ErrMalformed
		}
		e.kind = int(rest[0])
		copy(e.hash[:], rest[1:1+hashLen])
		elen := int(rest[1+hashLen])
		rest = rest[2+hashLen:]
		if elen == 0 || elen > maxEpoch || len(rest) < elen {
			return Cursor{}, ErrMalformed
		}
		e.pos.Epoch, rest = string(rest[:elen]), rest[elen:]
		var ok bool
		if e.pos.ID.MS, rest, ok = uvarint(rest); !ok {
			return Cursor{}, ErrMalformed
		}
		if e.pos.ID.Seq, rest, ok = uvarint(rest); !ok {
			return Cursor{}, ErrMalformed
		}
		if e.kind > 3 || len(entries) > 0 && e.kind <= entries[len(entries)-1].kind {
			return Cursor{}, ErrMalformed // kinds are known, distinct and in order
		}
		entries = append(entries, e)
	}
	if len(rest) != 0 {
		return Cursor{}, ErrMalformed
	}
	return match(entries, at, chs)
}

// match lines the cursor's entries up with the subscriber's channels.
func match(entries []entry, at int, chs []wire.Channel) (Cursor, error) {
	c := Cursor{Pos: make([]bus.Position, len(chs)), At: -1}
	// Identity first: a personal or company channel of someone else means
	// another user or tenant, whatever else the cursor holds.
	for _, e := range entries {
		for _, ch := range chs {
			if k := Kind(ch); k == e.kind && (k == 0 || k == 2) && channelHash(ch) != e.hash {
				return Cursor{}, ErrForeign
			}
		}
	}
	if len(entries) != len(chs) {
		return Cursor{}, ErrStale
	}
	for j, e := range entries {
		i := slices.IndexFunc(chs, func(ch wire.Channel) bool { return Kind(ch) == e.kind })
		if i < 0 || channelHash(chs[i]) != e.hash {
			return Cursor{}, ErrStale
		}
		c.Pos[i] = e.pos
		if j == at {
			c.At = i
		}
	}
	return c, nil
}

func channelHash(ch wire.Channel) [hashLen]byte {
	sum := sha256.Sum256([]byte(ch))
	return [hashLen]byte(sum[:hashLen])
}

// uvarint reads one minimally encoded uvarint.
func uvarint(b []byte) (uint64, []byte, bool) {
	v, k := binary.Uvarint(b)
	var min [binary.MaxVarintLen64]byte
	// k ≤ 0 (too short, overflow) never equals the ≥ 1 bytes v takes.
	if k != binary.PutUvarint(min[:], v) {
		return 0, b, false
	}
	return v, b[k:], true
}
