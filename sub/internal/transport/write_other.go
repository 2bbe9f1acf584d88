//go:build !unix

package transport

import "syscall"

// Elsewhere every write takes the blocking path, on a goroutine of its own.
const canWriteNow = false

func writeNonBlocking(syscall.RawConn, []byte) (int, error) { return 0, nil }
