package main

import "syscall"

// sysProcAttr puts a child in its own process group, so that Ctrl-C in a
// terminal reaches run alone and run stops the children in order; and has
// the kernel stop the child if run itself dies without cleaning up.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
