package reference

import (
	"strings"
	"testing"

	"github.com/berth-containers/berth/pkg/errdefs"
)

const testDigest = "sha256:4bf9f6d0e0e6ed6d8a3b2d1d9b1c4b8e9a1c9d0f5a6b7c8d9e0f1a2b3c4d5e6f"

func TestParseNormalized(t *testing.T) {
	for _, tc := range []struct {
		in                      string
		want, domain, path, tag string
		dgst                    string
		familiar                string
	}{
		{in: "busybox", want: "docker.io/library/busybox:latest", domain: "docker.io", path: "library/busybox", tag: "latest", familiar: "busybox:latest"},
		{in: "busybox:1.36", want: "docker.io/library/busybox:1.36", domain: "docker.io", path: "library/busybox", tag: "1.36", familiar: "busybox:1.36"},
		{in: "x/y:tag", want: "docker.io/x/y:tag", domain: "docker.io", path: "x/y", tag: "tag", familiar: "x/y:tag"},
		{in: "docker.io/busybox", want: "docker.io/library/busybox:latest", domain: "docker.io", path: "library/busybox", tag: "latest", familiar: "busybox:latest"},
		{in: "index.docker.io/library/busybox", want: "docker.io/library/busybox:latest", domain: "docker.io", path: "library/busybox", tag: "latest", familiar: "busybox:latest"},
		{in: "docker.io/library/a/b", want: "docker.io/library/a/b:latest", domain: "docker.io", path: "library/a/b", tag: "latest", familiar: "library/a/b:latest"},
		{in: "localhost:5000/x", want: "localhost:5000/x:latest", domain: "localhost:5000", path: "x", tag: "latest", familiar: "localhost:5000/x:latest"},
		{in: "localhost/x", want: "localhost/x:latest", domain: "localhost", path: "x", tag: "latest", familiar: "localhost/x:latest"},
		{in: "host:5000/a/b@" + testDigest, want: "host:5000/a/b@" + testDigest, domain: "host:5000", path: "a/b", dgst: testDigest, familiar: "host:5000/a/b@" + testDigest},
		{in: "busybox:1@" + testDigest, want: "docker.io/library/busybox:1@" + testDigest, domain: "docker.io", path: "library/busybox", tag: "1", dgst: testDigest, familiar: "busybox:1@" + testDigest},
		{in: "[::1]:5000/a", want: "[::1]:5000/a:latest", domain: "[::1]:5000", path: "a", tag: "latest", familiar: "[::1]:5000/a:latest"},
		{in: "192.168.1.1/a__b/c-d--e/f.g", want: "192.168.1.1/a__b/c-d--e/f.g:latest", domain: "192.168.1.1", path: "a__b/c-d--e/f.g", tag: "latest", familiar: "192.168.1.1/a__b/c-d--e/f.g:latest"},
		{in: "Registry.Example.com/x", want: "Registry.Example.com/x:latest", domain: "Registry.Example.com", path: "x", tag: "latest", familiar: "Registry.Example.com/x:latest"},
		{in: "ghcr.io/o/r:v1_A.b-c", want: "ghcr.io/o/r:v1_A.b-c", domain: "ghcr.io", path: "o/r", tag: "v1_A.b-c", familiar: "ghcr.io/o/r:v1_A.b-c"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			n, err := ParseNormalized(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if n.String() != tc.want || n.Domain() != tc.domain || n.Path() != tc.path || n.Tag() != tc.tag || string(n.Digest()) != tc.dgst {
				t.Fatalf("got %q (%q %q %q %q)", n, n.Domain(), n.Path(), n.Tag(), n.Digest())
			}
			if got := FamiliarString(n); got != tc.familiar {
				t.Fatalf("familiar: got %q want %q", got, tc.familiar)
			}
			// Normalising is idempotent.
			again, err := ParseNormalized(n.String())
			if err != nil || again.String() != n.String() {
				t.Fatalf("re-parse %q: %v %v", n, again, err)
			}
		})
	}
}

func TestParseInvalid(t *testing.T) {
	for _, tc := range []struct{ in, wantMsg string }{
		{"", "empty"},
		{"Busybox", "lowercase"},
		{"docker.io/Library/busybox", "lowercase"},
		{"busybox:", "tag"},
		{"busybox:-x", "tag"},
		{"busybox:" + strings.Repeat("a", 129), "tag"},
		{"busybox@sha256:abc", "digest"},
		{"busybox@md5:d41d8cd98f00b204e9800998ecf8427e", "digest"},
		{"busybox@", "digest"},
		{"a//b", "empty path component"},
		{"a/b/", "empty path component"},
		{"/a", "empty path component"},
		{"a..b", "path component"},
		{"a-/b", "path component"},
		{"_a", "path component"},
		{"host:/a", "empty port"},
		{"host:abc/a", "port"},
		{"host:99999/a", "port"},
		{"-host.com/a", "host"},
		{"[::1/a", "IPv6"},
		{"[zz]:5000/a", "IPv6"},
		{"[::1]x/a", "junk"},
		{":tag", "missing repository"},
		{"@" + testDigest, "missing repository"},
		{strings.Repeat("a", 256), "longer than 255"},
		{"docker.io/" + strings.Repeat("a", 240), "longer than 255"},
		{strings.Repeat("a", 5000), "longer than 4096"},
		{"4bf9f6d0e0e6ed6d8a3b2d1d9b1c4b8e9a1c9d0f5a6b7c8d9e0f1a2b3c4d5e6f", "image ID"},
		{"a b", "path component"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			_, err := ParseNormalized(tc.in)
			if err == nil {
				t.Fatal("expected an error")
			}
			if !errdefs.IsInvalidArgument(err) {
				t.Fatalf("want InvalidArgument, got %v", err)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("error %q does not mention %q", err, tc.wantMsg)
			}
		})
	}
}

func TestParseStrict(t *testing.T) {
	for _, tc := range []struct{ in, domain, path, tag string }{
		{"busybox", "", "busybox", ""},
		{"x/y:1", "", "x/y", "1"},
		{"localhost:5000/x", "localhost:5000", "x", ""},
		{"docker.io/library/busybox:latest", "docker.io", "library/busybox", "latest"},
	} {
		n, err := Parse(tc.in)
		if err != nil {
			t.Fatalf("%s: %v", tc.in, err)
		}
		if n.Domain() != tc.domain || n.Path() != tc.path || n.Tag() != tc.tag || n.String() != tc.in {
			t.Fatalf("%s: got %q %q %q %q", tc.in, n.Domain(), n.Path(), n.Tag(), n)
		}
	}
}

func TestParseDockerRef(t *testing.T) {
	for in, want := range map[string]string{
		"busybox":                 "docker.io/library/busybox:latest",
		"busybox:1@" + testDigest: "docker.io/library/busybox@" + testDigest,
		"a.b/c@" + testDigest:     "a.b/c@" + testDigest,
		"localhost:5000/x/y:v2":   "localhost:5000/x/y:v2",
	} {
		n, err := ParseDockerRef(in)
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if n.String() != want {
			t.Fatalf("%s: got %q want %q", in, n, want)
		}
	}
}

func TestHelpers(t *testing.T) {
	n, err := ParseNormalized("busybox:1")
	if err != nil {
		t.Fatal(err)
	}
	if got := TrimNamed(n).String(); got != "docker.io/library/busybox" || !IsNameOnly(TrimNamed(n)) {
		t.Fatalf("TrimNamed: %q", got)
	}
	if got := FamiliarName(n); got != "busybox" {
		t.Fatalf("FamiliarName: %q", got)
	}
	tagged, err := WithTag(n, "2")
	if err != nil || tagged.String() != "docker.io/library/busybox:2" {
		t.Fatalf("WithTag: %v %v", tagged, err)
	}
	if _, err := WithTag(n, "bad tag"); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("WithTag bad: %v", err)
	}
	d, err := WithDigest(n, testDigest)
	if err != nil || d.String() != "docker.io/library/busybox:1@"+testDigest {
		t.Fatalf("WithDigest: %v %v", d, err)
	}
	if _, err := WithDigest(n, "sha256:zz"); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("WithDigest bad: %v", err)
	}
}
