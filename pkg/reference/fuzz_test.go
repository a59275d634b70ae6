package reference

import "testing"

func FuzzParseNormalized(f *testing.F) {
	for _, s := range []string{
		"busybox", "x/y:tag", "localhost:5000/x", "host:1/a/b@" + testDigest,
		"[::1]:5000/a:b", "a..b", "Upper/x", ":", "@", "a:b:c", "a/b@sha256:",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseNormalized(s)
		if err != nil {
			return
		}
		// Whatever parses must print to a string that parses to itself,
		// fits the length bound and keeps its parts.
		again, err := ParseNormalized(n.String())
		if err != nil {
			t.Fatalf("%q -> %q does not re-parse: %v", s, n, err)
		}
		if again.String() != n.String() || again.Domain() != n.Domain() || again.Path() != n.Path() ||
			again.Tag() != n.Tag() || again.Digest() != n.Digest() {
			t.Fatalf("%q: %q re-parses to %q", s, n, again)
		}
		if len(n.Name()) > NameTotalLengthMax {
			t.Fatalf("%q: name %q too long", s, n.Name())
		}
		if _, err := ParseNormalized(FamiliarString(n)); err != nil {
			t.Fatalf("%q: familiar %q does not parse: %v", s, FamiliarString(n), err)
		}
	})
}
