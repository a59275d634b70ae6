package runc

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/berth-containers/berth/pkg/errdefs"
)

// Error is a failed runc invocation.
type Error struct {
	// Op is the runc subcommand: "create", "exec", "kill", ...
	Op string
	// Status is runc's exit status.
	Status int
	// Msg is runc's last error message, from its log file or stderr.
	Msg string
}

func (e *Error) Error() string {
	if e.Msg == "" {
		return fmt.Sprintf("runc %s: exit status %d", e.Op, e.Status)
	}
	return fmt.Sprintf("runc %s: %s", e.Op, e.Msg)
}

// Is maps runc's messages to errdefs kinds, so callers can test
// errdefs.IsNotFound(err) on a container runc does not know.
func (e *Error) Is(target error) bool {
	m := e.Msg
	switch target {
	case errdefs.ErrNotFound:
		return strings.Contains(m, "does not exist") ||
			strings.Contains(m, "container not running") ||
			strings.Contains(m, "process already finished") ||
			strings.Contains(m, "no such process")
	case errdefs.ErrAlreadyExists:
		return strings.Contains(m, "already exists") || strings.Contains(m, "container with id exists")
	case errdefs.ErrFailedPrecondition:
		return strings.Contains(m, "not paused") || strings.Contains(m, "not running") ||
			strings.Contains(m, "is paused") || strings.Contains(m, "cannot ")
	}
	return false
}

// logMark returns the size of the log file now, so a failure reads only the
// lines its own invocation wrote.
func (r *Runc) logMark() int64 {
	if r.Log == "" {
		return 0
	}
	fi, err := os.Stat(r.Log)
	if err != nil {
		return 0
	}
	return fi.Size()
}

func (r *Runc) failure(op string, status int, mark int64, stderr []byte) error {
	msg := r.lastLogError(mark)
	if msg == "" {
		msg = lastLine(stderr)
	}
	return &Error{Op: op, Status: status, Msg: msg}
}

// lastLogError returns the message of the last error-level line written to
// the json log after mark.
func (r *Runc) lastLogError(mark int64) string {
	if r.Log == "" || r.logFormat() != "json" {
		return ""
	}
	f, err := os.Open(r.Log)
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := f.Seek(mark, io.SeekStart); err != nil {
		return ""
	}
	var last string
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 64*1024), 1024*1024)
	for s.Scan() {
		var l struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		if json.Unmarshal(s.Bytes(), &l) != nil {
			continue
		}
		if l.Level == "error" || l.Level == "fatal" {
			last = l.Msg
		}
	}
	return last
}

func lastLine(b []byte) string {
	b = bytes.TrimSpace(b)
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		b = b[i+1:]
	}
	return string(b)
}
