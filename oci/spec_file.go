package oci

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/berth-containers/berth/pkg/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// maxSpecFile bounds a spec loaded from disk; real ones are a few KiB.
const maxSpecFile = 16 << 20

// WithSpecFromFile replaces the whole spec with the one in the JSON file at
// p (`ctr run --config`). It must carry a 1.x ociVersion and a process.
// Options applied after it still adjust it.
func WithSpecFromFile(p string) SpecOpts {
	return func(_ context.Context, _ *ContainerInfo, s *specs.Spec) error {
		f, err := os.Open(p)
		if err != nil {
			if os.IsNotExist(err) {
				return fmt.Errorf("open spec file: %w: %w", err, errdefs.ErrNotFound)
			}
			return fmt.Errorf("open spec file: %w", err)
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, maxSpecFile+1))
		if err != nil {
			return fmt.Errorf("read spec file %s: %w", p, err)
		}
		if len(b) > maxSpecFile {
			return fmt.Errorf("spec file %s is larger than %d bytes: %w", p, maxSpecFile, errdefs.ErrInvalidArgument)
		}
		loaded, err := decodeSpec(b)
		if err != nil {
			return fmt.Errorf("spec file %s: %w", p, err)
		}
		*s = *loaded
		return nil
	}
}

// WithSpecFromBytes replaces the whole spec with the JSON spec in b, with
// the same checks as WithSpecFromFile.
func WithSpecFromBytes(b []byte) SpecOpts {
	return func(_ context.Context, _ *ContainerInfo, s *specs.Spec) error {
		loaded, err := decodeSpec(b)
		if err != nil {
			return fmt.Errorf("spec: %w", err)
		}
		*s = *loaded
		return nil
	}
}

// decodeSpec parses and sanity-checks a whole spec. Unknown fields are
// allowed: newer clients may set fields this runtime-spec version lacks.
func decodeSpec(b []byte) (*specs.Spec, error) {
	var s specs.Spec
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("decode: %w: %w", err, errdefs.ErrInvalidArgument)
	}
	if dec.More() {
		return nil, fmt.Errorf("trailing data after the spec: %w", errdefs.ErrInvalidArgument)
	}
	if s.Version == "" {
		return nil, fmt.Errorf("ociVersion is required: %w", errdefs.ErrInvalidArgument)
	}
	if !strings.HasPrefix(s.Version, "1.") {
		return nil, fmt.Errorf("ociVersion %q: only 1.x specs are supported: %w", s.Version, errdefs.ErrInvalidArgument)
	}
	if s.Process == nil {
		return nil, fmt.Errorf("process is required: %w", errdefs.ErrInvalidArgument)
	}
	return &s, nil
}
