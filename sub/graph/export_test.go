package graph

import "github.com/oshirase/oshirase/wire"

// Execute renders m through the generated execution, as Render does for
// a shape it does not write itself.
func (s *Shape) Execute(m *wire.Message) []byte { return s.execute(m) }

// Written says whether Render writes the shape itself.
func (s *Shape) Written() bool { return s.fields != nil }
