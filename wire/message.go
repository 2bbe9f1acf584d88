package wire

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Version is the message format version written by this code. Decode
// accepts it and, since fields are only ever added, any later version too.
const Version = 1

// Message is one notice as it travels over Redis. Unknown fields are
// ignored on decode, so a newer publisher can add fields without breaking an
// older subscriber.
type Message struct {
	V     int    `json:"v"`
	ID    string `json:"id"`    // UUIDv7: unique and ordered by publish time
	Text  string `json:"text"`  // the notice itself
	TS    int64  `json:"ts"`    // publish time, Unix milliseconds, stamped once by pub
	Scope Scope  `json:"scope"` // whom it was addressed to

	// Pos and Epoch say where the notice sits in its channel's history (a
	// Redis stream id, and the history's epoch). The publisher never sets
	// them: the bus splices them into the payload it PUBLISHes, right after
	// the opening brace, once the history has given the notice its place.
	// Empty when history is off.
	Pos   string `json:"p,omitempty"`
	Epoch string `json:"e,omitempty"`
}

// NewMessage stamps a new notice with an id and the publish time.
func NewMessage(text string, scope Scope, now time.Time) (*Message, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return nil, fmt.Errorf("wire: new id: %w", err)
	}
	return &Message{V: Version, ID: id.String(), Text: text, TS: now.UnixMilli(), Scope: scope}, nil
}

// Timestamp is the publish time in Unix seconds.
func (m *Message) Timestamp() int64 { return m.TS / 1000 }

// PublishedAt is the publish time.
func (m *Message) PublishedAt() time.Time { return time.UnixMilli(m.TS) }

// Encode returns the JSON form of m, as json.Marshal writes it. The error
// is always nil (kept for callers written against json.Marshal).
func (m *Message) Encode() ([]byte, error) {
	return appendMessage(make([]byte, 0, 96+len(m.ID)+len(m.Text)+len(m.Scope)+len(m.Pos)+len(m.Epoch)), m), nil
}

// ErrMalformed is wrapped by every Decode error.
var ErrMalformed = errors.New("malformed message")

// Decode parses and checks a message read from Redis. Anyone with access to
// Redis can PUBLISH anything, so every field is checked before it is trusted.
func Decode(b []byte) (*Message, error) {
	m, ok := decodeFast(b)
	if !ok {
		m = Message{}
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("wire: %w: %v", ErrMalformed, err)
		}
	}
	// ifs, not a tagless switch, so that gremlins can mutate the conditions
	// (go-gremlins/gremlins#298; docs/mutation.md).
	if m.V < 1 {
		return nil, fmt.Errorf("wire: %w: version %d", ErrMalformed, m.V)
	}
	if m.ID == "" {
		return nil, fmt.Errorf("wire: %w: no id", ErrMalformed)
	}
	if m.TS <= 0 {
		return nil, fmt.Errorf("wire: %w: no timestamp", ErrMalformed)
	}
	if m.Scope != "" && !m.Scope.Valid() {
		return nil, fmt.Errorf("wire: %w: unknown scope %q", ErrMalformed, m.Scope)
	}
	if m.Scope == "" {
		m.Scope = ScopePerson
	}
	return &m, nil
}
