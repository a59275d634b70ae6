// Package identifiers validates the names of containers, namespaces, snapshot
// keys and leases with containerd's rule: alphanumerics joined by single '.',
// '_' or '-', at most 76 characters. Such a name is safe as a path element.
package identifiers

import (
	"fmt"
	"regexp"

	"github.com/berth-containers/berth/pkg/errdefs"
)

const maxLength = 76

var identifierRe = regexp.MustCompile(`^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$`)

// Validate returns an InvalidArgument error naming what is wrong with s.
func Validate(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("identifier must not be empty: %w", errdefs.ErrInvalidArgument)
	case len(s) > maxLength:
		return fmt.Errorf("identifier %q greater than maximum length (%d characters): %w", s, maxLength, errdefs.ErrInvalidArgument)
	case !identifierRe.MatchString(s):
		return fmt.Errorf("identifier %q must match %v: %w", s, identifierRe, errdefs.ErrInvalidArgument)
	}
	return nil
}
