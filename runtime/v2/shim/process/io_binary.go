package process

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"sort"
	"time"

	"github.com/berth-containers/berth/pkg/namespaces"
	"github.com/berth-containers/berth/runtime/v2/shim/reaper"
	"golang.org/x/sys/unix"
)

// Monitor reaps the logging binaries; tests and the shim share the default.
var Monitor = reaper.Default

const (
	loggerReadyTimeout = 30 * time.Second
	loggerStopTimeout  = 5 * time.Second
)

// binaryLogger is a logging binary (binary:// URI): it reads the
// container's stdout and stderr pipes itself on fds 3 and 4, and closes or
// writes to fd 5 when it is ready.
type binaryLogger struct {
	cmd *exec.Cmd
	ec  <-chan reaper.Exit
}

// startLogger starts the binary with the pipes' read ends; the container
// gets the write ends. The query becomes the binary's arguments
// (binary:///bin/log?--file=x → /bin/log --file x), sorted so the order is
// stable.
func (p *processIO) startLogger(ctx context.Context, id string, u *url.URL) error {
	ns, ok := namespaces.Namespace(ctx)
	if !ok {
		ns = namespaces.Default
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("logger stdout pipe: %w", err)
	}
	defer outR.Close()
	errR, errW, err := os.Pipe()
	if err != nil {
		outW.Close()
		return fmt.Errorf("logger stderr pipe: %w", err)
	}
	defer errR.Close()
	readyR, readyW, err := os.Pipe()
	if err != nil {
		outW.Close()
		errW.Close()
		return fmt.Errorf("logger ready pipe: %w", err)
	}
	defer readyR.Close()

	if p.stdio.Terminal {
		// The pty output goes to the logger's stdout; nothing writes its
		// stderr.
		p.termOut = &sharedWriter{name: "logger", w: outW}
		errW.Close()
	} else {
		p.runc.Stdout, p.runc.Stderr = outW, errW
	}

	q := u.Query()
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var args []string
	for _, k := range keys {
		args = append(args, k)
		if v := q[k]; len(v) > 0 && v[0] != "" {
			args = append(args, v[0])
		}
	}
	cmd := exec.Command(u.Path, args...)
	cmd.Env = []string{"CONTAINER_ID=" + id, "CONTAINER_NAMESPACE=" + ns}
	cmd.ExtraFiles = []*os.File{outR, errR, readyW}
	ec, err := Monitor.Start(cmd)
	readyW.Close()
	if err != nil {
		return fmt.Errorf("start logging binary %s: %w", u.Path, err)
	}
	p.logger = &binaryLogger{cmd: cmd, ec: ec}

	// The logger is ready when it writes to or closes fd 5 (exiting closes
	// it too; its exit is then the answer).
	readyR.SetReadDeadline(time.Now().Add(loggerReadyTimeout))
	if _, err := readyR.Read(make([]byte, 1)); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("wait for logging binary %s: %w", u.Path, err)
	}
	return nil
}

// stop waits for the logger to finish with the closed pipes, then asks it
// to stop with SIGTERM, then kills it.
func (l *binaryLogger) stop() {
	defer l.cmd.Process.Release()
	t := time.NewTimer(loggerStopTimeout)
	defer t.Stop()
	select {
	case <-l.ec:
		return
	case <-time.After(100 * time.Millisecond):
	}
	_ = l.cmd.Process.Signal(unix.SIGTERM)
	select {
	case <-l.ec:
		return
	case <-t.C:
	}
	_ = l.cmd.Process.Kill()
	<-l.ec
}
