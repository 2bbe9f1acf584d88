// Package selectiontest writes random GraphQL selection sets, for tests
// that hold two ways of answering one to each other: the same fields
// written every way a client may write them — aliases, repeats, inline
// fragments with and without a type condition, a named fragment, @skip
// and @include, fields with selections of their own.
package selectiontest

import (
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
)

// Object is a type's fields as Random may select them.
type Object struct {
	// Type names the type, for inline fragments' conditions.
	Type string
	// Fields maps each field without a selection to the aliases it may
	// be written under ("" for none). An alias belongs to one field: two
	// fields under one key are a validation error, not an answer.
	Fields map[string][]string
	// Objects are the fields with a selection of their own.
	Objects map[string]*Object
	// Fragment names a fragment on Type that the document defines; Random
	// spreads it now and then. Empty for none.
	Fragment string
}

// Random writes a selection set of o (without its braces). Its
// directives use $b, a Boolean variable the operation must declare.
func Random(rnd *rand.Rand, o *Object) string { return o.pick(rnd, 0) }

func (o *Object) pick(rnd *rand.Rand, depth int) string {
	fields, objects := slices.Sorted(maps.Keys(o.Fields)), slices.Sorted(maps.Keys(o.Objects))
	var parts []string
	for range 1 + rnd.IntN(5) {
		switch k := rnd.IntN(10); {
		case k < 6 || (k < 8 && len(objects) == 0):
			f := fields[rnd.IntN(len(fields))]
			as := o.Fields[f]
			parts = append(parts, as[rnd.IntN(len(as))]+f+directive(rnd))
		case k < 8:
			f := objects[rnd.IntN(len(objects))]
			parts = append(parts, f+directive(rnd)+" { "+o.Objects[f].pick(rnd, 2)+" }")
		case k < 9 && o.Fragment != "":
			parts = append(parts, "..."+o.Fragment+directive(rnd))
		case depth < 2:
			parts = append(parts, "..."+[]string{" on " + o.Type, ""}[rnd.IntN(2)]+directive(rnd)+" { "+o.pick(rnd, depth+1)+" }")
		}
	}
	if len(parts) == 0 {
		return fields[0]
	}
	return strings.Join(parts, " ")
}

func directive(rnd *rand.Rand) string {
	switch rnd.IntN(6) {
	case 0:
		return " @skip(if: $b)"
	case 1:
		return " @include(if: $b)"
	case 2:
		return " @skip(if: false)"
	case 3:
		return " @include(if: true)"
	}
	return ""
}
