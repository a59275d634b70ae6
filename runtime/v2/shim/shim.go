// Package shim is the containerd shim v2 command line of
// containerd-shim-berth-v2: `start` launches a serving shim for a bundle
// and prints its ttrpc address, `delete` cleans up after a shim that died,
// and with no action the process serves the task API on its socket.
// containerd 1.6 and berthd both drive it this way.
package shim

import (
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-containers/berth/runtime/v2/shim/internal/sha256"
)

// Config is the shim's command line.
type Config struct {
	// Namespace owns the shim's tasks (-namespace).
	Namespace string
	// ID is the task id (-id).
	ID string
	// Address is the daemon's gRPC address (-address); events go to its
	// ttrpc twin, address + ".ttrpc", unless TTRPC_ADDRESS says otherwise.
	Address string
	// PublishBinary is the daemon binary (-publish-binary); unused, events
	// go over ttrpc.
	PublishBinary string
	// Bundle is the bundle path (-bundle); the working directory if empty.
	Bundle string
	// Socket is the socket to serve on (-socket); fd 3 if empty.
	Socket string
	Debug  bool
}

// SocketDir holds the shims' sockets.
var SocketDir = "/run/berth/s"

// AddressFile and LogFifo are the bundle's files the shim protocol uses:
// the shim's ttrpc address, and the FIFO the daemon reads the shim's log
// from.
const (
	AddressFile = "address"
	LogFifo     = "log"
)

// groupLabels are the annotations that let several containers share one
// shim (a pod sandbox), as in containerd.
var groupLabels = []string{
	"io.containerd.runc.v2.group",
	"io.kubernetes.cri.sandbox-id",
}

func (c Config) bundle() (string, error) {
	if c.Bundle != "" {
		return c.Bundle, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("bundle from working directory: %w", err)
	}
	return wd, nil
}

// SocketAddress is the shim's address for a grouping id: a hash of the
// daemon address, namespace and id, so it is stable across daemon restarts
// and unique per daemon.
func SocketAddress(daemonAddress, ns, group string) string {
	d := sha256.Sum256([]byte(filepath.Join(daemonAddress, ns, group)))
	return "unix://" + filepath.Join(SocketDir, hex.EncodeToString(d[:]))
}

func socketPath(address string) string {
	return strings.TrimPrefix(address, "unix://")
}

// writeAddress writes the bundle's address file atomically.
func writeAddress(bundle, address string) error {
	tmp := filepath.Join(bundle, "."+AddressFile)
	if err := os.WriteFile(tmp, []byte(address), 0o600); err != nil {
		return fmt.Errorf("write address file: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(bundle, AddressFile)); err != nil {
		return fmt.Errorf("write address file: %w", err)
	}
	return nil
}
