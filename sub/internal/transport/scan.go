package transport

import (
	"encoding/json"

	"github.com/oshirase/oshirase/service/gqlserve"
	"github.com/oshirase/oshirase/service/jsonscan"
)

// The fast path for what clients send most: a subscribe message and its
// payload, read in one pass over the message (jsonscan, and
// gqlserve.ParamsFast for the payload) instead of four decodes through
// encoding/json (a map of the message, a map of its payload, the query,
// then the payload again into graphql.RawParams). In a burst of 100,000
// subscriptions the four took 13 % of sub's CPU.
//
// It takes only plain messages (see jsonscan) and whatever it takes it
// reads exactly as the slow path would (FuzzParseFast checks that against
// it). ok false means only that it did not take the message: the slow
// path then decides, and says what is wrong.

// parseFast is parse for the messages it takes (see above); ok false:
// parseSlow decides.
func parseFast(data []byte) (m msg, ok bool) {
	s := string(data) // one copy, so that spans can be sliced as strings
	var typ, id, payload string
	end, ok := jsonscan.Members(s, jsonscan.SkipSpace(s, 0), func(key string, start, end int) bool {
		switch key {
		case "type":
			typ = s[start:end]
		case "id":
			id = s[start:end]
		case "payload":
			payload = s[start:end]
		}
		return true // a key given twice: the last one counts, as in parse's map
	})
	if !ok || jsonscan.SkipSpace(s, end) != len(s) {
		return msg{}, false
	}
	if m.Type, _, ok = jsonscan.String(typ, 0, true); !ok || len(typ) == 0 {
		return msg{}, false
	}
	if !jsonscan.IsNull(payload) {
		m.Payload = json.RawMessage(payload)
	}
	switch m.Type {
	case "subscribe":
		if m.ID, _, ok = jsonscan.String(id, 0, true); !ok || m.ID == "" {
			return msg{}, false
		}
		if m.params, ok = gqlserve.ParamsFast(m.Payload, true); !ok {
			return msg{}, false
		}
		return m, true
	case "complete":
		if m.ID, _, ok = jsonscan.String(id, 0, true); !ok || m.ID == "" {
			return msg{}, false
		}
		m.Payload = nil
		return m, true
	case "connection_init", "ping", "pong":
		if m.Payload != nil && m.Payload[0] != '{' {
			return msg{}, false
		}
		return m, true
	}
	return msg{}, false // the rest is for the slow path to refuse
}
