// Package oneproc puts ctr on one P for every command but the ones that
// move image data, before the packages that start goroutines initialise.
//
// ctr's commands are a dozen round trips with a goroutine or two; a second
// P only adds threads and wake-ups (measured: `ctr run -d` ~10% less CPU
// with one P, same latency; twenty started at once compete for the node's
// cores with the containers they start). Image and content commands, which
// move data, keep every CPU, and so does any ctr run with GOMAXPROCS set.
//
// It is done in this package's init because dropping a P later costs: the
// P's cached spans go back to the heap's central lists, which on a Go
// process's first such hand-back means fresh pages (measured: ~170 page
// faults, a fifth of ctr run's, when done from main). Packages initialise
// in import-path order as far as their imports allow (Go spec), and this
// one imports only the runtime and os, so it runs before grpc, protobuf
// and the rest have allocated anything on a second P.
package oneproc

import (
	"os"
	"runtime"
	"strings"
)

func init() {
	if os.Getenv("GOMAXPROCS") == "" && !bulk(command(os.Args[1:])) {
		runtime.GOMAXPROCS(1)
	}
}

// valueFlags are ctr's global flags that take a value as the next
// argument.
var valueFlags = map[string]bool{
	"a": true, "address": true, "n": true, "namespace": true, "timeout": true, "connect-timeout": true,
}

// command is the first argument that is not a global flag (or a flag's
// value).
func command(args []string) string {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			if i+1 < len(args) {
				return args[i+1]
			}
			return ""
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			return a
		}
		name := strings.TrimLeft(a, "-")
		if !strings.Contains(name, "=") && valueFlags[name] {
			i++
		}
	}
	return ""
}

// bulk reports the commands that move image data.
func bulk(cmd string) bool {
	switch cmd {
	case "images", "image", "i", "content":
		return true
	}
	return false
}
