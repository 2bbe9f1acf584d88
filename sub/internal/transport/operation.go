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
// a failure is reported through failed. A fresh subscription reads where
// its channels' histories stand before it goes live; one resuming after a
// cursor catches up once live (resume.go).
func (s *Server) subscribe(op *operation, chs []wire.Channel, shape Shape, after *cursor.Cursor, alias string, failed func(gqlerror.List)) {
	op.chs = chs
	err := s.goLive(op, chs, shape, after)
	s.busy()
	if err != nil {
		if op.done.Load() {
			return
		}
		failed(s.present(op.ctx, nil, gqlerror.List{{Err: err, Message: err.Error(), Path: fieldPath(alias)}}).Errors)
	}
}

// goLive readies op (a fresh one), attaches it to the hub and catches it
// up (one resuming after a cursor).
func (s *Server) goLive(op *operation, chs []wire.Channel, shape Shape, after *cursor.Cursor) error {
	if after == nil {
		if err := s.startFresh(op); err != nil {
			return err
		}
	}
	sub, err := s.cfg.Hub.Subscribe(op.ctx, chs, shape, op)
	if err != nil {
		return err
	}
	op.attach(sub)
	if after != nil {
		return s.catchUp(op, after)
	}
	return nil
}

func fieldPath(alias string) ast.Path { return ast.Path{ast.PathName(alias)} }

// responseWithErrors is a result that failed as a whole: {"errors":…,"data":null}.
func responseWithErrors(errs gqlerror.List) *graphql.Response {
	return &graphql.Response{Errors: errs}
}
