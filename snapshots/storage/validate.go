package storage

import (
	"fmt"
	"strings"

	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/identifiers"
)

const (
	maxKeyLength   = 4096
	maxLabelLength = 4096 // key and value together, as containerd limits
)

// ValidateKey checks a snapshot key or name. Keys may be any printable
// string (containerd's clients use "default/1/sha256:..."): they are only
// bolt keys, never paths.
func ValidateKey(key string) error {
	if len(key) > maxKeyLength {
		return fmt.Errorf("snapshot key longer than %d bytes: %w", maxKeyLength, errdefs.ErrInvalidArgument)
	}
	return identifiers.ValidateName("snapshot key", key)
}

// ValidateLabels checks label keys and sizes.
func ValidateLabels(labels map[string]string) error {
	for k, v := range labels {
		if k == "" {
			return fmt.Errorf("label key must not be empty: %w", errdefs.ErrInvalidArgument)
		}
		if len(k)+len(v) > maxLabelLength {
			return fmt.Errorf("label %q: key and value longer than %d bytes: %w", k, maxLabelLength, errdefs.ErrInvalidArgument)
		}
		if strings.ContainsRune(k, 0) || strings.ContainsRune(v, 0) {
			return fmt.Errorf("label %q: NUL byte: %w", k, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}
