package fleet

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// bindNoPort sets IP_BIND_ADDRESS_NO_PORT on a socket dialled from a
// chosen loopback source address: the kernel then picks its port at
// connect time, unique for the whole address pair, instead of reserving a
// port of its own at bind time. Without it 100,000 connections spread over
// 32 source addresses hold nearly every ephemeral port in the kernel's
// bind table, and a proxy on the same machine (nginx in loadtest/lb.sh)
// can no longer open its own connections to the servers behind it
// (EADDRNOTAVAIL).
func bindNoPort(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
	})
	if err != nil {
		return err
	}
	return serr
}
