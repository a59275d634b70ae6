package platforms

import (
	"strconv"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Matcher tells whether a platform is wanted. Implementations normalise
// what they are given.
type Matcher interface {
	Match(p ocispec.Platform) bool
}

// MatchComparer also orders matching platforms: Less(a, b) is true when a
// is preferred to b. Choosing a manifest from an index takes the least.
type MatchComparer interface {
	Matcher
	Less(a, b ocispec.Platform) bool
}

// exact compares normalised OS, architecture and variant; OS version and
// features are not compared, as containerd does not for Linux.
func exact(want, got ocispec.Platform) bool {
	return want.OS == got.OS && want.Architecture == got.Architecture && want.Variant == got.Variant
}

type exactMatcher struct{ p ocispec.Platform }

// NewMatcher matches p exactly (after normalising both sides).
func NewMatcher(p ocispec.Platform) Matcher { return exactMatcher{Normalize(p)} }

func (m exactMatcher) Match(p ocispec.Platform) bool { return exact(m.p, Normalize(p)) }

type orderedMatcher struct{ ps []ocispec.Platform }

// Ordered matches any of ps and prefers earlier ones.
func Ordered(ps ...ocispec.Platform) MatchComparer {
	norm := make([]ocispec.Platform, len(ps))
	for i, p := range ps {
		norm[i] = Normalize(p)
	}
	return orderedMatcher{norm}
}

func (m orderedMatcher) rank(p ocispec.Platform) int {
	p = Normalize(p)
	for i, want := range m.ps {
		if exact(want, p) {
			return i
		}
	}
	return len(m.ps)
}

func (m orderedMatcher) Match(p ocispec.Platform) bool { return m.rank(p) < len(m.ps) }
func (m orderedMatcher) Less(a, b ocispec.Platform) bool {
	return m.rank(a) < m.rank(b)
}

type anyMatcher struct{ orderedMatcher }

// Any matches any of ps with no preference among them.
func Any(ps ...ocispec.Platform) MatchComparer {
	return anyMatcher{Ordered(ps...).(orderedMatcher)}
}

func (anyMatcher) Less(a, b ocispec.Platform) bool { return false }

type allMatcher struct{}

func (allMatcher) Match(ocispec.Platform) bool     { return true }
func (allMatcher) Less(a, b ocispec.Platform) bool { return false }

// All matches every platform, preferring none.
var All MatchComparer = allMatcher{}

// OnlyStrict matches p alone.
func OnlyStrict(p ocispec.Platform) MatchComparer { return Ordered(p) }

// Only matches p and the platforms a p machine also runs, best first, as
// containerd does: amd64/vN also runs lower amd64 variants and 386; arm/vN
// runs arm down to v5; arm64 runs arm64 and then arm/v8 down to arm/v5.
func Only(p ocispec.Platform) MatchComparer {
	return Ordered(compatible(Normalize(p))...)
}

func compatible(p ocispec.Platform) []ocispec.Platform {
	out := []ocispec.Platform{p}
	switch p.Architecture {
	case "amd64":
		if v, ok := variantNumber(p.Variant); ok {
			for v--; v >= 1; v-- {
				out = append(out, Normalize(ocispec.Platform{OS: p.OS, Architecture: "amd64", Variant: "v" + strconv.Itoa(v)}))
			}
		}
		out = append(out, ocispec.Platform{OS: p.OS, Architecture: "386"})
	case "arm":
		if v, ok := variantNumber(p.Variant); ok {
			for v--; v >= 5; v-- {
				out = append(out, ocispec.Platform{OS: p.OS, Architecture: "arm", Variant: "v" + strconv.Itoa(v)})
			}
		}
	case "arm64":
		v := p.Variant
		if v == "" {
			v = "v8"
		}
		out = append(out, compatible(ocispec.Platform{OS: p.OS, Architecture: "arm", Variant: v})...)
	}
	return out
}

func variantNumber(v string) (int, bool) {
	n, err := strconv.Atoi(strings.TrimPrefix(v, "v"))
	return n, err == nil
}
