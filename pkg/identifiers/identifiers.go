// Package identifiers validates the names of containers, namespaces, snapshot
// keys and leases with containerd's rule: alphanumerics joined by single '.',
// '_' or '-', at most 76 characters. Such a name is safe as a path element.
package identifiers

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/berth-containers/berth/pkg/errdefs"
)

const maxLength = 76

// pattern is the rule Validate enforces, for error messages. It is
// checked by hand: regexp would add its weight to every shim.
const pattern = `^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$`

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// matches reports whether s is alphanumeric runs joined by single '.', '_'
// or '-'.
func matches(s string) bool {
	prevSep := true // the start behaves like a separator: no leading one
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isAlnum(c):
			prevSep = false
		case c == '.' || c == '_' || c == '-':
			if prevSep {
				return false
			}
			prevSep = true
		default:
			return false
		}
	}
	return !prevSep
}

// Validate returns an InvalidArgument error naming what is wrong with s.
func Validate(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("identifier must not be empty: %w", errdefs.ErrInvalidArgument)
	case len(s) > maxLength:
		return fmt.Errorf("identifier %q greater than maximum length (%d characters): %w", s, maxLength, errdefs.ErrInvalidArgument)
	case !matches(s):
		return fmt.Errorf("identifier %q must match %v: %w", s, pattern, errdefs.ErrInvalidArgument)
	}
	return nil
}

// maxNameLength bounds the free-form names below.
const maxNameLength = 4096

// ValidateName checks a free-form name that never becomes a path: lease
// IDs, snapshot keys, ingest refs. containerd's clients generate such names
// outside the identifier rule ("455218903--vgB" for a lease,
// "sha256:…" for a snapshot), so they only need to be non-empty, bounded,
// UTF-8 and printable. kind names the object in the error.
func ValidateName(kind, s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%s must not be empty: %w", kind, errdefs.ErrInvalidArgument)
	case len(s) > maxNameLength:
		return fmt.Errorf("%s longer than %d bytes: %w", kind, maxNameLength, errdefs.ErrInvalidArgument)
	case !utf8.ValidString(s):
		return fmt.Errorf("%s %q: not UTF-8: %w", kind, s, errdefs.ErrInvalidArgument)
	case strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0:
		return fmt.Errorf("%s %q: unprintable characters: %w", kind, s, errdefs.ErrInvalidArgument)
	}
	return nil
}
