package bus

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// StreamID is a place in one channel's history: a Redis stream id,
// "<milliseconds>-<sequence>". Ids grow with every notice appended; the zero
// StreamID ("0-0") comes before every notice.
type StreamID struct {
	MS, Seq uint64
}

// ParseStreamID reads "<ms>-<seq>" as Redis writes it.
func ParseStreamID(s string) (StreamID, error) {
	ms, seq, ok := strings.Cut(s, "-")
	if !ok {
		return StreamID{}, fmt.Errorf("bus: bad stream id %q", s)
	}
	a, err1 := strconv.ParseUint(ms, 10, 64)
	b, err2 := strconv.ParseUint(seq, 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return StreamID{}, fmt.Errorf("bus: bad stream id %q", s)
	}
	return StreamID{a, b}, nil
}

// String is the id as Redis writes it.
func (id StreamID) String() string {
	return strconv.FormatUint(id.MS, 10) + "-" + strconv.FormatUint(id.Seq, 10)
}

// IsZero reports whether id is "0-0".
func (id StreamID) IsZero() bool { return id == StreamID{} }

// Compare returns -1, 0 or +1 as id is before, equal to or after o.
func (id StreamID) Compare(o StreamID) int {
	// ifs, not tagless switches, in this package: gremlins v0.6.0 cannot
	// see a switch's case conditions as covered (go-gremlins/gremlins#298).
	if id.MS < o.MS {
		return -1
	}
	if id.MS > o.MS {
		return 1
	}
	if id.Seq < o.Seq {
		return -1
	}
	if id.Seq > o.Seq {
		return 1
	}
	return 0
}

// Prev is the largest id before id ("0-0" stays "0-0").
func (id StreamID) Prev() StreamID {
	if id.Seq > 0 {
		return StreamID{id.MS, id.Seq - 1}
	}
	if id.MS > 0 {
		return StreamID{id.MS - 1, math.MaxUint64}
	}
	return id
}

// Next is the smallest id after id (the largest id stays itself).
func (id StreamID) Next() StreamID {
	if id.Seq < math.MaxUint64 {
		return StreamID{id.MS, id.Seq + 1}
	}
	if id.MS < math.MaxUint64 {
		return StreamID{id.MS + 1, 0}
	}
	return id
}

// Position is where a reader stands in one channel's history: every notice
// up to and including ID was seen, in the history named Epoch. A history
// gets a new epoch whenever it starts over (Redis lost its data, or the
// channel was silent long enough for its meta to expire), so a position
// from another epoch cannot be resumed: its ids mean nothing there.
type Position struct {
	Epoch string
	ID    StreamID
}

// Entry is one notice read from a channel's history.
type Entry struct {
	// Pos is the notice's own position.
	Pos Position
	// Payload is the message exactly as the Handler received it live: the
	// encoded wire.Message with its position spliced in.
	Payload []byte
}

// splice puts the position into an encoded message right after its
// opening brace, as publish.lua does for the live copy.
func splice(msg []byte, id, epoch string) []byte {
	if len(msg) < 2 || msg[0] != '{' {
		return msg
	}
	out := make([]byte, 0, len(msg)+len(id)+len(epoch)+16)
	out = append(out, `{"p":"`...)
	out = append(out, id...)
	out = append(out, `","e":"`...)
	out = append(out, epoch...)
	out = append(out, '"')
	if rest := bytes.TrimLeft(msg[1:], " \t\r\n"); len(rest) == 0 || rest[0] != '}' {
		out = append(out, ',')
	}
	return append(out, msg[1:]...)
}
