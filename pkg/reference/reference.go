// Package reference parses and normalises image references the way Docker
// and containerd do: `busybox` is `docker.io/library/busybox:latest`,
// `localhost:5000/x@sha256:…` names a registry on localhost. Every error is
// an errdefs.ErrInvalidArgument naming the piece that is wrong.
package reference

import (
	// go-digest only knows algorithms whose hash is linked in.
	_ "crypto/sha256"
	_ "crypto/sha512"
	"fmt"
	"strconv"
	"strings"

	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/opencontainers/go-digest"
)

// Named is a parsed reference. Name is Domain + "/" + Path (or Path alone
// when there is no domain); Tag and Digest are empty when absent.
type Named interface {
	// String is the whole reference: name[:tag][@digest].
	String() string
	Name() string
	Domain() string
	Path() string
	Tag() string
	Digest() digest.Digest
}

type reference struct {
	domain string
	path   string
	tag    string
	digest digest.Digest
}

func (r reference) Name() string {
	if r.domain == "" {
		return r.path
	}
	return r.domain + "/" + r.path
}

func (r reference) String() string {
	s := r.Name()
	if r.tag != "" {
		s += ":" + r.tag
	}
	if r.digest != "" {
		s += "@" + r.digest.String()
	}
	return s
}

func (r reference) Domain() string        { return r.domain }
func (r reference) Path() string          { return r.path }
func (r reference) Tag() string           { return r.tag }
func (r reference) Digest() digest.Digest { return r.digest }

func invalid(s, format string, args ...any) error {
	return fmt.Errorf("reference %q: %s: %w", s, fmt.Sprintf(format, args...), errdefs.ErrInvalidArgument)
}

// Parse parses s by the grammar without normalising it: no default domain,
// no "library/", no default tag. A first path component is a domain when it
// holds a '.' or ':', is "localhost", or has upper case letters (as Docker
// decides).
func Parse(s string) (Named, error) {
	r, err := parse(s)
	if err != nil {
		return nil, err
	}
	return r, nil
}

func parse(s string) (reference, error) {
	var r reference
	switch {
	case s == "":
		return r, invalid(s, "empty reference")
	case len(s) > maxReferenceLength:
		return r, invalid(s[:64]+"…", "longer than %d characters", maxReferenceLength)
	}

	rest := s
	if i := strings.IndexByte(rest, '@'); i >= 0 {
		d := digest.Digest(rest[i+1:])
		if err := d.Validate(); err != nil {
			return r, invalid(s, "digest %q: %v", string(d), err)
		}
		r.digest = d
		rest = rest[:i]
	}
	// A ':' after the last '/' starts the tag; one before it is a port.
	if i := strings.LastIndexByte(rest, ':'); i >= 0 && i > strings.LastIndexByte(rest, '/') {
		tag := rest[i+1:]
		if !tagRe().MatchString(tag) {
			return r, invalid(s, "tag %q must match %s", tag, tagRe())
		}
		r.tag = tag
		rest = rest[:i]
	}
	if rest == "" {
		return r, invalid(s, "missing repository name")
	}
	if len(rest) > NameTotalLengthMax {
		return r, invalid(s, "repository name longer than %d characters", NameTotalLengthMax)
	}

	r.path = rest
	if i := strings.IndexByte(rest, '/'); i >= 0 && isDomain(rest[:i]) {
		r.domain, r.path = rest[:i], rest[i+1:]
		if err := validateDomain(r.domain); err != nil {
			return r, invalid(s, "%v", err)
		}
	}
	if err := validatePath(r.path); err != nil {
		return r, invalid(s, "%v", err)
	}
	return r, nil
}

func isDomain(first string) bool {
	return strings.ContainsAny(first, ".:") || first == "localhost" || strings.ToLower(first) != first
}

func validateDomain(domain string) error {
	host, port := domain, ""
	if strings.HasPrefix(domain, "[") {
		end := strings.IndexByte(domain, ']')
		if end < 0 {
			return fmt.Errorf("domain %q: unterminated IPv6 address", domain)
		}
		host, port = domain[:end+1], domain[end+1:]
		if !ipv6Re().MatchString(host) {
			return fmt.Errorf("domain %q: invalid IPv6 address", domain)
		}
		if port != "" && !strings.HasPrefix(port, ":") {
			return fmt.Errorf("domain %q: junk after IPv6 address", domain)
		}
		port = strings.TrimPrefix(port, ":")
		if port == "" && strings.HasSuffix(domain, ":") {
			return fmt.Errorf("domain %q: empty port", domain)
		}
	} else if i := strings.IndexByte(domain, ':'); i >= 0 {
		host, port = domain[:i], domain[i+1:]
		if port == "" {
			return fmt.Errorf("domain %q: empty port", domain)
		}
	}
	if !strings.HasPrefix(host, "[") && !domainNameRe().MatchString(host) {
		return fmt.Errorf("domain %q: host %q must be a DNS name or an IP address", domain, host)
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if !portRe().MatchString(port) || err != nil || n > maxPortNumber {
			return fmt.Errorf("domain %q: port %q must be a number up to %d", domain, port, maxPortNumber)
		}
	}
	return nil
}

func validatePath(path string) error {
	for _, c := range strings.Split(path, "/") {
		switch {
		case c == "":
			return fmt.Errorf("repository %q has an empty path component", path)
		case strings.ToLower(c) != c:
			return fmt.Errorf("repository name %q must be lowercase", path)
		case !pathComponentRe().MatchString(c):
			return fmt.Errorf("path component %q must match %s", c, pathComponentRe())
		}
	}
	return nil
}
