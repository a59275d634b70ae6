package cio

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-containers/berth/pkg/errdefs"
)

// LogFile is a Creator that sends stdout and stderr to the file at path
// (made absolute), which the shim appends to. The file and its directory
// are created here so permission problems show up in the client.
func LogFile(path string) Creator {
	return func(_ string) (IO, error) {
		abs, err := filepath.Abs(path)
		if err != nil {
			return nil, fmt.Errorf("log file %q: %w", path, err)
		}
		u := &url.URL{Scheme: "file", Path: abs}
		if err := ValidateLogURI(u); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
			return nil, fmt.Errorf("log file %q: %w", abs, err)
		}
		f, err := os.OpenFile(abs, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
		if err != nil {
			return nil, fmt.Errorf("log file %q: %w", abs, err)
		}
		f.Close()
		return logURIIO(u), nil
	}
}

// LogURI is a Creator that sends stdout and stderr to u: "file:///abs/path"
// (a file the shim appends to) or "binary:///abs/path?k=v" (a program the
// shim starts with the output FIFOs as its fds 3 and 4).
func LogURI(u *url.URL) Creator {
	return func(_ string) (IO, error) {
		if err := ValidateLogURI(u); err != nil {
			return nil, err
		}
		return logURIIO(u), nil
	}
}

// BinaryIO is a Creator that sends stdout and stderr to the logging binary
// at path, with args passed as the URI's query.
func BinaryIO(binary string, args map[string]string) Creator {
	return func(_ string) (IO, error) {
		u, err := LogURIGenerator("binary", binary, args)
		if err != nil {
			return nil, err
		}
		return logURIIO(u), nil
	}
}

// LogURIGenerator builds a scheme:///abs/path?args URI, making path absolute.
func LogURIGenerator(scheme, path string, args map[string]string) (*url.URL, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("log uri path %q: %w", path, err)
	}
	u := &url.URL{Scheme: scheme, Path: abs}
	if len(args) > 0 {
		q := url.Values{}
		for k, v := range args {
			q.Set(k, v)
		}
		u.RawQuery = q.Encode()
	}
	if err := ValidateLogURI(u); err != nil {
		return nil, err
	}
	return u, nil
}

// ParseLogURI parses and validates a log URI string.
func ParseLogURI(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("log uri %q: %w: %w", s, err, errdefs.ErrInvalidArgument)
	}
	if err := ValidateLogURI(u); err != nil {
		return nil, err
	}
	return u, nil
}

// ValidateLogURI checks u is a file:// or binary:// URI naming an absolute,
// clean local path. The daemon runs as root and will open or execute it, so
// anything ambiguous is refused rather than interpreted.
func ValidateLogURI(u *url.URL) error {
	invalid := func(why string) error {
		return fmt.Errorf("log uri %q: %s: %w", u, why, errdefs.ErrInvalidArgument)
	}
	if u == nil {
		return fmt.Errorf("log uri: none given: %w", errdefs.ErrInvalidArgument)
	}
	switch u.Scheme {
	case "file", "binary":
	default:
		return invalid(`scheme must be "file" or "binary"`)
	}
	switch {
	case u.Opaque != "":
		return invalid("must be scheme:///absolute/path")
	case u.Host != "" || u.User != nil:
		return invalid("must not name a host")
	case u.Path == "" || !strings.HasPrefix(u.Path, "/"):
		return invalid("path must be absolute")
	case strings.ContainsRune(u.Path, 0):
		return invalid("must not contain NUL")
	case filepath.Clean(u.Path) != u.Path:
		return invalid("path must be clean (no //, . or ..)")
	case u.Scheme == "file" && u.RawQuery != "":
		return invalid("file URIs take no query")
	case u.Fragment != "":
		return invalid("must not have a fragment")
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return invalid("bad query: " + err.Error())
	}
	// Query values become a logging binary's arguments or environment.
	for k, vs := range q {
		for _, v := range vs {
			if strings.ContainsRune(k, 0) || strings.ContainsRune(v, 0) {
				return invalid("must not contain NUL")
			}
		}
	}
	return nil
}

func logURIIO(u *url.URL) IO {
	s := u.String()
	return &staticIO{config: Config{Stdout: s, Stderr: s}}
}
