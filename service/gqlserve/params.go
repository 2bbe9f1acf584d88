package gqlserve

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/99designs/gqlgen/graphql"

	"github.com/oshirase/oshirase/service/jsonscan"
)

// DecodeParams reads a GraphQL request ({query, operationName, variables,
// extensions}) as gqlgen's transports do: numbers stay json.Number, and
// what follows the first JSON value is ignored. Plain requests are read
// in one pass (ParamsFast; FuzzParamsFast checks it reads each the same);
// the rest through encoding/json.
func DecodeParams(data []byte) (*graphql.RawParams, error) {
	if p, ok := ParamsFast(data, false); ok {
		return p, nil
	}
	return decodeParamsSlow(data)
}

// decodeParamsSlow is DecodeParams through encoding/json, for every
// request.
func decodeParamsSlow(data []byte) (*graphql.RawParams, error) {
	var p graphql.RawParams
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&p); err != nil {
		return nil, err
	}
	return &p, nil
}

// rawParamsKeys are graphql.RawParams's JSON names: encoding/json matches
// them without regard to case, so a key that is one of them in another
// case is left to it.
var rawParamsKeys = []string{"query", "operationName", "variables", "extensions"}

// ParamsFast is DecodeParams in one pass (jsonscan) for the plain
// requests it takes, and for those alone: ok false means only that it
// did not take data, which DecodeParams then decodes through
// encoding/json. requireQuery also leaves a request whose query is
// missing or null to the caller's slow path (sub's subscribe message
// refuses it with its own reason).
func ParamsFast(data []byte, requireQuery bool) (*graphql.RawParams, bool) {
	s := string(data)
	i := jsonscan.SkipSpace(s, 0)
	var query, name, vars, exts string
	end, ok := jsonscan.Members(s, i, func(key string, start, end int) bool {
		v := s[start:end]
		var at *string
		switch key {
		case "query":
			at = &query
		case "operationName":
			at = &name
		case "variables":
			at = &vars
		case "extensions":
			at = &exts
		default:
			for _, k := range rawParamsKeys {
				if strings.EqualFold(key, k) {
					return false
				}
			}
			return true
		}
		// A key given twice is left to encoding/json: into a struct it
		// merges two objects, where a map keeps the last.
		if *at != "" {
			return false
		}
		*at = v
		return true
	})
	if !ok || jsonscan.SkipSpace(s, end) != len(s) {
		return nil, false
	}
	var p graphql.RawParams
	switch {
	case jsonscan.IsNull(query):
		if requireQuery {
			return nil, false
		}
	default:
		if p.Query, _, ok = jsonscan.String(query, 0, true); !ok {
			return nil, false
		}
	}
	if !jsonscan.IsNull(name) {
		if p.OperationName, _, ok = jsonscan.String(name, 0, true); !ok {
			return nil, false
		}
	}
	if p.Variables, ok = objectOrNull(vars); !ok {
		return nil, false
	}
	if p.Extensions, ok = objectOrNull(exts); !ok {
		return nil, false
	}
	return &p, true
}

// objectOrNull decodes a span that is absent, null or an object, numbers
// as json.Number (DecodeParams's UseNumber).
func objectOrNull(v string) (map[string]any, bool) {
	if jsonscan.IsNull(v) {
		return nil, true
	}
	if v[0] != '{' {
		return nil, false
	}
	if m, ok := object(v, 0); ok {
		return m, true
	}
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader([]byte(v)))
	dec.UseNumber()
	if dec.Decode(&m) != nil {
		return nil, false
	}
	return m, true
}

// object decodes the JSON object v, nested depth deep, as encoding/json
// decodes it into a map[string]any with UseNumber, without reflection: the
// variables clients send, up to a publishBatch's list of inputs. False
// for what jsonscan does not take (escapes beyond the one-character ones)
// and for nesting past maxFastDepth; encoding/json decides those.
func object(v string, depth int) (map[string]any, bool) {
	if depth > maxFastDepth {
		return nil, false
	}
	m := map[string]any{}
	end, ok := jsonscan.Members(v, 0, func(key string, start, end int) bool {
		x, ok := value(v[start:end], depth+1)
		m[key] = x
		return ok
	})
	return m, ok && end == len(v)
}

// maxFastDepth bounds the nesting object takes: each level scans its
// value once more (jsonscan checks a member's value before object decodes
// it), so deep input would cost depth times its size. Variables are
// shallow: a publishBatch's are three deep.
const maxFastDepth = 8

// value decodes the JSON value v (checked already) as object does.
func value(v string, depth int) (any, bool) {
	switch c := v[0]; {
	case c == '"':
		s, _, ok := jsonscan.String(v, 0, true)
		return s, ok
	case c == 't':
		return true, true
	case c == 'f':
		return false, true
	case c == 'n':
		return nil, true
	case c == '-' || (c >= '0' && c <= '9'):
		return json.Number(v), true
	case c == '{':
		m, ok := object(v, depth)
		return m, ok
	case c == '[':
		if depth > maxFastDepth {
			return nil, false
		}
		list := []any{}
		end, ok := jsonscan.Elements(v, 0, func(start, end int) bool {
			x, ok := value(v[start:end], depth+1)
			list = append(list, x)
			return ok
		})
		return list, ok && end == len(v)
	}
	return nil, false
}
