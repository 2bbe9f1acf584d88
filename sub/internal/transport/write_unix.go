//go:build unix

package transport

import "syscall"

const canWriteNow = true

// writeNonBlocking makes one write attempt on the socket, which Go keeps
// in non-blocking mode: it returns what the kernel took, 0 when its buffer
// is full. RawConn.Write holds the descriptor's write lock meanwhile.
func writeNonBlocking(rc syscall.RawConn, b []byte) (int, error) {
	var n int
	var werr error
	err := rc.Write(func(fd uintptr) bool {
		for {
			n, werr = syscall.Write(int(fd), b)
			if werr != syscall.EINTR {
				return true
			}
		}
	})
	switch {
	case err != nil:
		return 0, err
	case werr == syscall.EAGAIN:
		return 0, nil
	case werr != nil:
		return 0, werr
	}
	return n, nil
}
