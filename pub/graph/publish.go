package graph

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/oshirase/oshirase/pub/graph/model"
	"github.com/oshirase/oshirase/pub/internal/access"
	"github.com/oshirase/oshirase/pub/internal/publisher"
	"github.com/oshirase/oshirase/service/auth"
	"github.com/oshirase/oshirase/service/errkind"
	"github.com/oshirase/oshirase/service/gqlserve"
)

// target is the audience input asks for.
func target(input *model.PublishInput) access.Target {
	t := access.Target{Scope: input.Scope}
	if input.To != nil {
		t.To = *input.To
	}
	if input.Tenant != nil {
		t.Tenant = *input.Tenant
	}
	return t
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// notice checks the caller may address t and makes the publisher's notice.
func notice(caller auth.Identity, t access.Target, text, key string) (publisher.Notice, error) {
	if !t.Scope.Valid() {
		// gqlparser lets a variable's enum value through in any case
		// ("person"), and gqlgen's mapping then leaves the scope empty.
		return publisher.Notice{}, fmt.Errorf("%w: scope is not one of PERSON, STORE, COMPANY, PUBLIC (enum values are upper case)", errkind.ErrBadInput)
	}
	t, err := access.Resolve(caller, t)
	if err != nil {
		return publisher.Notice{}, err
	}
	return publisher.Notice{Tenant: t.Tenant, Scope: t.Scope, To: t.To, Text: text, IdempotencyKey: key}, nil
}

func callerOf(ctx context.Context) (auth.Identity, error) {
	caller, ok := auth.FromContext(ctx)
	if !ok {
		return auth.Identity{}, fmt.Errorf("%w: no credentials", errkind.ErrForbidden)
	}
	return caller, nil
}

// publish checks the caller may address t, then publishes.
func (r *mutationResolver) publish(ctx context.Context, t access.Target, text, key string) (*model.SendNotificationResponse, error) {
	caller, err := callerOf(ctx)
	if err != nil {
		return nil, err
	}
	n, err := notice(caller, t, text, key)
	if err != nil {
		return nil, err
	}
	received, msg, err := r.Publisher.Publish(ctx, access.Credential(ctx), n)
	if err != nil {
		return nil, err
	}
	return &model.SendNotificationResponse{ReceivedUsers: int64(received), ID: msg.ID, Timestamp: msg.Timestamp()}, nil
}

// publishBatch checks each input on its own (an input the caller may not
// address fails alone), publishes the rest in one batch, and answers in
// input order.
func (r *mutationResolver) publishBatch(ctx context.Context, inputs []*model.PublishInput) ([]*model.PublishResult, error) {
	caller, err := callerOf(ctx)
	if err != nil {
		return nil, err
	}
	if err := r.Publisher.CheckBatch(len(inputs)); err != nil {
		return nil, err
	}
	out := make([]*model.PublishResult, len(inputs))
	ns := make([]publisher.Notice, 0, len(inputs))
	index := make([]int, 0, len(inputs)) // ns[j] is inputs[index[j]]
	for i, in := range inputs {
		n, err := notice(caller, target(in), in.Text, deref(in.IdempotencyKey))
		if err != nil {
			out[i] = r.failed(ctx, err)
			continue
		}
		ns = append(ns, n)
		index = append(index, i)
	}
	res, err := r.Publisher.PublishBatch(ctx, access.Credential(ctx), ns)
	if err != nil {
		return nil, err
	}
	for j, res := range res {
		if res.Err != nil {
			out[index[j]] = r.failed(ctx, res.Err)
			continue
		}
		received, ts := int64(res.Received), res.Msg.Timestamp()
		out[index[j]] = &model.PublishResult{ReceivedUsers: &received, ID: &res.Msg.ID, Timestamp: &ts}
	}
	return out, nil
}

// failed is one batch item's error, coded as a request's would be.
func (r *mutationResolver) failed(ctx context.Context, err error) *model.PublishResult {
	log := r.Log
	if log == nil {
		log = slog.Default()
	}
	e := gqlserve.ErrorFor(ctx, err, log)
	code, _ := e.Extensions["code"].(string)
	return &model.PublishResult{Error: &model.PublishError{Code: code, Message: e.Message}}
}
