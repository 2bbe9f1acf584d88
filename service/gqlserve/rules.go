package gqlserve

import (
	"strconv"
	"strings"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/validator/core"
	"github.com/vektah/gqlparser/v2/validator/rules"
)

// validationRules are gqlparser's default rules with its
// SingleFieldSubscriptions rule replaced by singleRootField.
func validationRules() *rules.Rules {
	r := rules.NewDefaultRules()
	r.ReplaceRule(rules.SingleFieldSubscriptionsRule.Name, singleRootField)
	return r
}

// singleRootField is the GraphQL spec's "Single root field" rule: a
// subscription selects exactly one root field, which is not an
// introspection field, and (spec draft) without @skip or @include, which
// would make the count depend on variables. gqlparser's own rule tells
// root fields apart by name, so `a: f b: f` passed it, and gqlgen then
// failed the operation when it ran, as an internal error; the spec counts
// response keys (aliases).
func singleRootField(observers *core.Events, addError core.AddErrFunc) {
	observers.OnOperation(func(walker *core.Walker, op *ast.OperationDefinition) {
		if op.Operation != ast.Subscription || walker.Schema.Subscription == nil {
			return
		}
		name := "Anonymous Subscription"
		if op.Name != "" {
			name = "Subscription " + strconv.Quote(op.Name)
		}
		keys := map[string]bool{}
		visited := map[string]bool{}
		var walk func(ast.SelectionSet)
		walk = func(set ast.SelectionSet) {
			for _, sel := range set {
				for _, d := range directives(sel) {
					if d.Name == "skip" || d.Name == "include" {
						addError(core.Message(`%s must not use @%s on its root selections.`, name, d.Name), core.At(d.Position))
					}
				}
				switch s := sel.(type) {
				case *ast.Field:
					key := s.Alias
					if key == "" {
						key = s.Name
					}
					if !keys[key] && len(keys) == 1 {
						addError(core.Message(`%s must select only one top level field.`, name), core.At(s.Position))
					}
					keys[key] = true
					if strings.HasPrefix(s.Name, "__") {
						addError(core.Message(`%s must not select an introspection top level field.`, name), core.At(s.Position))
					}
				case *ast.InlineFragment:
					walk(s.SelectionSet)
				case *ast.FragmentSpread:
					def := s.Definition
					if def == nil {
						def = walker.Document.Fragments.ForName(s.Name)
					}
					if def != nil && !visited[s.Name] {
						visited[s.Name] = true
						walk(def.SelectionSet)
					}
				}
			}
		}
		walk(op.SelectionSet)
	})
}

func directives(sel ast.Selection) ast.DirectiveList {
	switch s := sel.(type) {
	case *ast.Field:
		return s.Directives
	case *ast.InlineFragment:
		return s.Directives
	case *ast.FragmentSpread:
		return s.Directives
	}
	return nil
}
