package transport

import (
	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/oshirase/oshirase/sub/internal/cursor"
	"github.com/oshirase/oshirase/wire"
)

// subscribe attaches op to the hub, waiting for the broker (Redis) on a
// goroutine that lives only as long as that wait (at most the hub's
// SubscribeTimeout). An operation ended meanwhile (the client completed it,
// the connection closed) lets go of the subscription as soon as it has it;
// a failure is reported through failed. Once live on the bus, the
// subscription catches up (resume.go): from after, or from now.
func (s *Server) subscribe(op *operation, chs []wire.Channel, shape Shape, after *cursor.Cursor, alias string, failed func(gqlerror.List)) {
	op.chs = chs
	sub, err := s.cfg.Hub.Subscribe(op.ctx, chs, shape, op)
	if err == nil {
		op.attach(sub)
		err = s.catchUp(op, after)
	}
	if err != nil {
		if op.done.Load() {
			return
		}
		failed(s.present(op.ctx, nil, gqlerror.List{{Err: err, Message: err.Error(), Path: fieldPath(alias)}}).Errors)
		return
	}
}

func fieldPath(alias string) ast.Path { return ast.Path{ast.PathName(alias)} }

// responseWithErrors is a result that failed as a whole: {"errors":…,"data":null}.
func responseWithErrors(errs gqlerror.List) *graphql.Response {
	return &graphql.Response{Errors: errs}
}
