package model

import "github.com/oshirase/oshirase/wire"

// Notice is a Notification as GraphQL serves it: the notice, and the
// cursor of the subscriber who receives it.
type Notice struct {
	*wire.Message
	// Cursor is where the subscriber stands after this notice; "" when
	// history is off.
	Cursor string
}
