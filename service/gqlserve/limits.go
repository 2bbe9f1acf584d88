package gqlserve

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
	"github.com/oshirase/oshirase/service/errkind"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/lexer"
	"github.com/vektah/gqlparser/v2/parser"
)

// Bounds on one GraphQL document, checked before gqlgen validates it.
// Validation is where a small request can cost the most: gqlparser's
// "overlapping fields can be merged" rule compares every pair of fields
// that land at the same place in the result (the same response key under
// the same parent), so one 60 KB query repeating a field 10,000 times
// costs seconds of CPU, and every fragment spread is walked again where it
// is spread. Within these bounds a document makes at most
// MaxQuerySelections × MaxRepeatedField / 2 such comparisons.
const (
	// MaxQueryTokens bounds the lexical tokens of a document (names,
	// punctuation, values). GraphiQL's introspection query has about 200.
	MaxQueryTokens = 1000
	// MaxQuerySelections bounds the selections (fields, fragment spreads,
	// inline fragments) of a document, counting a fragment's selections
	// wherever it is spread, over all its operations and fragments.
	// GraphiQL's introspection query, the largest document either schema
	// needs, has under 500. It is also the bound on the work of gqlgen's
	// complexity walk, which visits the same selections (see Limits).
	MaxQuerySelections = 600
	// MaxRepeatedField bounds how often a document selects one place in
	// the result: one response key under one parent, over every fragment.
	// Clients repeat a field when fragments overlap, a few times at most.
	MaxRepeatedField = 16
	// MaxQueryDepth is the default of LimitsConfig.MaxDepth
	// (MAX_QUERY_DEPTH): how deep fields nest in the result (a root field
	// is at depth 1), over every fragment. GraphiQL's introspection query,
	// the deepest document either schema needs, reaches 15 (a field's
	// argument's type, whose TypeRef fragment nests ofType nine times); the
	// schemas' own documents reach 3.
	MaxQueryDepth = 16
	// MaxQueryComplexity is the default of LimitsConfig.MaxComplexity
	// (MAX_QUERY_COMPLEXITY): the most a document may cost as gqlgen's
	// complexity extension scores it (every field 1 plus what it selects,
	// unless the schema says otherwise; introspection's __schema nothing).
	// sub's full page of 100 notices with every field costs 1,300.
	MaxQueryComplexity = 2000
)

// operationLimits refuses a document over the bounds above (the depth
// its Limits's) before gqlgen parses and validates it. Checking costs at
// most MaxQueryTokens lexer steps, one parse and MaxQuerySelections steps
// of a walk.
//
// It also refuses an operationName that names no operation of the
// document, without repeating the name back.
type operationLimits struct {
	maxTokens, maxSelections, maxRepeated, maxDepth int
	// validated holds the documents gqlgen has parsed and validated
	// already; they passed these limits before.
	validated graphql.Cache[*ast.QueryDocument]
	// counts counts and logs each refusal (nil: neither).
	counts *Limits
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationParameterMutator
} = operationLimits{}

func (operationLimits) ExtensionName() string                          { return "OperationLimits" }
func (operationLimits) Validate(schema graphql.ExecutableSchema) error { return nil }

// MutateOperationParameters implements graphql.OperationParameterMutator.
func (l operationLimits) MutateOperationParameters(ctx context.Context, p *graphql.RawParams) *gqlerror.Error {
	if _, ok := l.validated.Get(ctx, p.Query); ok {
		return nil
	}
	src := &ast.Source{Input: p.Query}
	lex := lexer.New(src)
	for n := 0; ; n++ {
		tok, err := lex.ReadToken()
		if err != nil {
			return nil // a syntax error: gqlgen's parser reports it
		}
		if tok.Kind == lexer.EOF {
			break
		}
		if n == l.maxTokens {
			l.counts.refuse(tooManyTokens, l.maxTokens)
			return tooComplex("the document has more than %d tokens", l.maxTokens)
		}
	}
	doc, err := parser.ParseQuery(src)
	if err != nil {
		return nil
	}
	switch why := shapeOf(doc, l.maxSelections, l.maxRepeated, l.maxDepth); why {
	case tooManySelections:
		l.counts.refuse(why, l.maxSelections)
		return tooComplex("the document has more than %d selections (fields, fragment spreads, inline fragments), counting a fragment wherever it is spread", l.maxSelections)
	case fieldRepeated:
		l.counts.refuse(why, l.maxRepeated)
		return tooComplex("the document selects one field (one response key under one parent) more than %d times", l.maxRepeated)
	case tooDeep:
		l.counts.refuse(why, l.maxDepth)
		return tooComplex("the document nests fields more than %d deep", l.maxDepth)
	}
	if p.OperationName != "" && doc.Operations.ForName(p.OperationName) == nil {
		e := gqlerror.Errorf("the document has no operation of the given operationName")
		e.Extensions = map[string]any{"code": errkind.CodeValidationFailed}
		return e
	}
	return nil
}

func tooComplex(format string, args ...any) *gqlerror.Error {
	e := gqlerror.Errorf(format, args...)
	e.Extensions = map[string]any{"code": errkind.CodeTooComplex}
	return e
}

// shape is what shapeOf finds of a document; past withinLimits, the
// reasons a document is refused (oshirase_*_documents_refused_total's
// reason label: refusalNames).
type shape int

const (
	withinLimits shape = iota
	tooManyTokens
	tooManySelections
	fieldRepeated
	tooDeep
	tooComplexScore // over MaxComplexity as gqlgen scores it
	numShapes
)

var refusalNames = [numShapes]string{
	tooManyTokens:     "tokens",
	tooManySelections: "selections",
	fieldRepeated:     "repeated_field",
	tooDeep:           "depth",
	tooComplexScore:   "complexity",
}

// RefusalReasons are the values of the reason label of the documents
// refused counter (Limits.Register).
func RefusalReasons() []string { return refusalNames[tooManyTokens:] }

// shapeOf walks every operation and fragment of doc as validation does,
// each fragment again wherever it is spread, and stops as soon as the walk
// passes maxSelections steps or one place in the result (a response key
// under one parent, the parent itself counted the same way) is selected
// more than maxRepeated times, or a field nests deeper than maxDepth. A
// spread inside its own expansion is not followed: validation refuses the
// cycle.
func shapeOf(doc *ast.QueryDocument, maxSelections, maxRepeated, maxDepth int) shape {
	defs := make(map[string]*ast.FragmentDefinition, len(doc.Fragments))
	for _, f := range doc.Fragments {
		if _, dup := defs[f.Name]; !dup {
			defs[f.Name] = f
		}
	}
	// place is one place in the result; its children are keyed by
	// response key, and count how often the document selects them.
	type place struct {
		children map[string]*place
		selected int
	}
	steps := 0
	expanding := map[string]bool{}
	var walk func(set ast.SelectionSet, at *place, depth int) shape
	walk = func(set ast.SelectionSet, at *place, depth int) shape {
		for _, sel := range set {
			if steps++; steps > maxSelections {
				return tooManySelections
			}
			var why shape
			switch s := sel.(type) {
			case *ast.Field:
				key := s.Alias
				if key == "" {
					key = s.Name
				}
				if at.children == nil {
					at.children = map[string]*place{}
				}
				child := at.children[key]
				if child == nil {
					child = &place{}
					at.children[key] = child
				}
				if child.selected++; child.selected > maxRepeated {
					return fieldRepeated
				}
				if depth+1 > maxDepth {
					return tooDeep
				}
				why = walk(s.SelectionSet, child, depth+1)
			case *ast.InlineFragment:
				why = walk(s.SelectionSet, at, depth)
			case *ast.FragmentSpread:
				def := defs[s.Name]
				if def == nil || expanding[s.Name] {
					continue
				}
				expanding[s.Name] = true
				why = walk(def.SelectionSet, at, depth)
				expanding[s.Name] = false
			}
			if why != withinLimits {
				return why
			}
		}
		return withinLimits
	}
	for _, op := range doc.Operations {
		if why := walk(op.SelectionSet, &place{}, 0); why != withinLimits {
			return why
		}
	}
	for _, f := range doc.Fragments {
		expanding[f.Name] = true
		why := walk(f.SelectionSet, &place{}, 0)
		expanding[f.Name] = false
		if why != withinLimits {
			return why
		}
	}
	return withinLimits
}
