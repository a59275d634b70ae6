package integration

import "syscall"

// ttyAttr makes the child a session leader with the pty as its
// controlling terminal, like a shell would.
func ttyAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
}
