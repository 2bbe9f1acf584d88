//go:build !linux

package fleet

import "syscall"

// bindNoPort is Linux's IP_BIND_ADDRESS_NO_PORT; elsewhere the kernel's
// default.
func bindNoPort(_, _ string, _ syscall.RawConn) error { return nil }
