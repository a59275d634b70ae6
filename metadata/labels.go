package metadata

import (
	"fmt"

	"github.com/berth-containers/berth/pkg/errdefs"
)

// maxLabelSize is containerd's limit on a label's key and value together.
const maxLabelSize = 4096

// validateLabels applies the one label rule every store shares: non-empty
// keys, and key plus value at most 4096 bytes.
func validateLabels(labels map[string]string) error {
	for k, v := range labels {
		if err := validateLabel(k, v); err != nil {
			return err
		}
	}
	return nil
}

func validateLabel(k, v string) error {
	if k == "" {
		return fmt.Errorf("label key must not be empty: %w", errdefs.ErrInvalidArgument)
	}
	if len(k)+len(v) > maxLabelSize {
		return fmt.Errorf("label %.64q: key and value length (%d bytes) greater than maximum size (%d bytes): %w",
			k, len(k)+len(v), maxLabelSize, errdefs.ErrInvalidArgument)
	}
	return nil
}
