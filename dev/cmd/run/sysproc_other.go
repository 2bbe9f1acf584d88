//go:build !linux

package main

import "syscall"

// sysProcAttr leaves children in run's process group: Ctrl-C reaches them
// directly as well, and each shuts itself down.
func sysProcAttr() *syscall.SysProcAttr { return nil }
