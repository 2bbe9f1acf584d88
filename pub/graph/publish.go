package graph

import (
	"context"
	"fmt"

	"github.com/oshirase/oshirase/pub/graph/model"
	"github.com/oshirase/oshirase/pub/internal/access"
	"github.com/oshirase/oshirase/service/auth"
	"github.com/oshirase/oshirase/service/errkind"
)

// publish checks the caller may address t, then publishes.
func (r *mutationResolver) publish(ctx context.Context, t access.Target, text string) (*model.SendNotificationResponse, error) {
	caller, ok := auth.FromContext(ctx)
	if !ok {
		return nil, fmt.Errorf("%w: no credentials", errkind.ErrForbidden)
	}
	t, err := access.Resolve(caller, t)
	if err != nil {
		return nil, err
	}
	n, msg, err := r.Publisher.Publish(ctx, t.Tenant, t.Scope, t.To, text)
	if err != nil {
		return nil, err
	}
	return &model.SendNotificationResponse{ReceivedUsers: int64(n), ID: msg.ID, Timestamp: msg.Timestamp()}, nil
}
