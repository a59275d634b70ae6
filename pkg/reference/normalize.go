package reference

import (
	"fmt"
	"strings"

	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/opencontainers/go-digest"
)

const (
	// DefaultDomain is where a name without a domain lives.
	DefaultDomain = "docker.io"
	// legacyDefaultDomain is an old spelling of DefaultDomain.
	legacyDefaultDomain = "index.docker.io"
	// officialRepoPrefix holds Docker Hub's one-component names.
	officialRepoPrefix = "library/"
	// DefaultTag is the tag of a reference given without tag or digest.
	DefaultTag = "latest"
)

// ParseNormalized parses a reference as a user types it and returns its
// fully qualified form: the default domain and "library/" are added as
// Docker Hub does, and "latest" when neither tag nor digest is given.
// A reference with both tag and digest keeps both.
//
//	busybox               -> docker.io/library/busybox:latest
//	x/y:1                 -> docker.io/x/y:1
//	localhost:5000/x      -> localhost:5000/x:latest
//	busybox@sha256:…      -> docker.io/library/busybox@sha256:…
func ParseNormalized(s string) (Named, error) {
	if anchoredIdentifierRe().MatchString(s) {
		return nil, invalid(s, "a 64-character hexadecimal string is an image ID, not a repository name")
	}
	r, err := parse(s)
	if err != nil {
		return nil, err
	}
	switch r.domain {
	case "", legacyDefaultDomain:
		r.domain = DefaultDomain
	}
	if r.domain == DefaultDomain && !strings.ContainsRune(r.path, '/') {
		r.path = officialRepoPrefix + r.path
	}
	if len(r.Name()) > NameTotalLengthMax {
		return nil, invalid(s, "repository name longer than %d characters", NameTotalLengthMax)
	}
	if r.tag == "" && r.digest == "" {
		r.tag = DefaultTag
	}
	return r, nil
}

// ParseDockerRef is ParseNormalized as containerd names images: when both
// tag and digest are given, the digest alone names the image.
func ParseDockerRef(s string) (Named, error) {
	n, err := ParseNormalized(s)
	if err != nil {
		return nil, err
	}
	r := n.(reference)
	if r.digest != "" {
		r.tag = ""
	}
	return r, nil
}

// FamiliarName is the name as a user would type it: without docker.io/
// and library/.
func FamiliarName(n Named) string {
	if n.Domain() != DefaultDomain {
		return n.Name()
	}
	path := n.Path()
	if rest, ok := strings.CutPrefix(path, officialRepoPrefix); ok && !strings.ContainsRune(rest, '/') {
		return rest
	}
	return path
}

// FamiliarString is FamiliarName with the tag and digest.
func FamiliarString(n Named) string {
	s := FamiliarName(n)
	if t := n.Tag(); t != "" {
		s += ":" + t
	}
	if d := n.Digest(); d != "" {
		s += "@" + d.String()
	}
	return s
}

// TrimNamed drops the tag and digest.
func TrimNamed(n Named) Named {
	return reference{domain: n.Domain(), path: n.Path()}
}

// IsNameOnly reports whether n has neither tag nor digest.
func IsNameOnly(n Named) bool { return n.Tag() == "" && n.Digest() == "" }

// WithTag returns n with its tag set to tag (the digest is kept).
func WithTag(n Named, tag string) (Named, error) {
	if !tagRe().MatchString(tag) {
		return nil, fmt.Errorf("tag %q must match %s: %w", tag, tagRe(), errdefs.ErrInvalidArgument)
	}
	return reference{domain: n.Domain(), path: n.Path(), tag: tag, digest: n.Digest()}, nil
}

// WithDigest returns n with its digest set to d (the tag is kept).
func WithDigest(n Named, d digest.Digest) (Named, error) {
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("digest %q: %v: %w", string(d), err, errdefs.ErrInvalidArgument)
	}
	return reference{domain: n.Domain(), path: n.Path(), tag: n.Tag(), digest: d}, nil
}
