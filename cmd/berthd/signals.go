package main

import (
	"context"
	"os"
	"runtime"
	"syscall"

	"github.com/berth-containers/berth/pkg/log"
)

// handledSignals: TERM and INT stop the daemon, USR1 dumps stacks, PIPE is
// caught only so that it is ignored.
var handledSignals = []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGUSR1, syscall.SIGPIPE}

// dumpStacks logs every goroutine's stack: the way to see what a hung
// daemon is waiting on without stopping it.
func dumpStacks(ctx context.Context) {
	buf := make([]byte, 1<<16)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	log.G(ctx).Infof("=== goroutine stack dump ===\n%s\n=== end of goroutine stack dump ===", buf)
}
