package process

import (
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"

	"github.com/berth-containers/berth/pkg/errdefs"
)

// parseURI reads a stdio name: a bare path (or fifo://) is a FIFO; file://
// and binary:// are log URIs.
func parseURI(name string) (*url.URL, error) {
	if name == "" {
		return nil, nil
	}
	u, err := url.Parse(name)
	if err != nil || u.Scheme == "" {
		// A FIFO path with characters url rejects is still a path.
		return &url.URL{Scheme: "fifo", Path: name}, nil
	}
	switch u.Scheme {
	case "fifo", "file", "binary":
		if u.Path == "" {
			return nil, fmt.Errorf("stdio URI %q: no path: %w", name, errdefs.ErrInvalidArgument)
		}
		return u, nil
	}
	return nil, fmt.Errorf("stdio URI %q: unsupported scheme %q: %w", name, u.Scheme, errdefs.ErrInvalidArgument)
}

func isBinary(u *url.URL) bool { return u != nil && u.Scheme == "binary" }

// openTarget opens a FIFO or file destination for output.
func openTarget(u *url.URL) (io.WriteCloser, error) {
	switch u.Scheme {
	case "file":
		if err := os.MkdirAll(filepath.Dir(u.Path), 0o755); err != nil {
			return nil, fmt.Errorf("create log file directory: %w", err)
		}
		f, err := os.OpenFile(u.Path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
		if err != nil {
			return nil, fmt.Errorf("open log file: %w", err)
		}
		return f, nil
	default:
		// O_RDWR never blocks on a FIFO, whether or not the client has
		// opened its end yet, and our own read side keeps a write from
		// failing with EPIPE if the client goes away; data waits in the
		// FIFO for a reader.
		f, err := os.OpenFile(u.Path, os.O_RDWR, 0)
		if err != nil {
			return nil, fmt.Errorf("open output fifo: %w", err)
		}
		return f, nil
	}
}
