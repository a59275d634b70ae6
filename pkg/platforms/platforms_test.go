package platforms

import (
	"runtime"
	"sort"
	"testing"

	"github.com/berth-containers/berth/pkg/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func plat(os, arch, variant string) ocispec.Platform {
	return ocispec.Platform{OS: os, Architecture: arch, Variant: variant}
}

func TestParse(t *testing.T) {
	host := Normalize(Default())
	for _, tc := range []struct {
		in     string
		want   ocispec.Platform
		format string
	}{
		{"linux/amd64", plat("linux", "amd64", ""), "linux/amd64"},
		{"linux/x86_64", plat("linux", "amd64", ""), "linux/amd64"},
		{"Linux/AMD64", plat("linux", "amd64", ""), "linux/amd64"},
		{"linux/amd64/v3", plat("linux", "amd64", "v3"), "linux/amd64/v3"},
		{"linux/amd64/v1", plat("linux", "amd64", ""), "linux/amd64"},
		{"linux/arm64/v8", plat("linux", "arm64", ""), "linux/arm64"},
		{"linux/aarch64", plat("linux", "arm64", ""), "linux/arm64"},
		{"linux/arm", plat("linux", "arm", "v7"), "linux/arm/v7"},
		{"linux/arm/6", plat("linux", "arm", "v6"), "linux/arm/v6"},
		{"linux/armhf", plat("linux", "arm", "v7"), "linux/arm/v7"},
		{"linux/armel", plat("linux", "arm", "v6"), "linux/arm/v6"},
		{"linux/i386", plat("linux", "386", ""), "linux/386"},
		{"macos/arm64", plat("darwin", "arm64", ""), "darwin/arm64"},
		{"windows/amd64", plat("windows", "amd64", ""), "windows/amd64"},
		{"linux/s390x", plat("linux", "s390x", ""), "linux/s390x"},
		{"linux", plat("linux", host.Architecture, host.Variant), ""},
		{"arm64", plat(runtime.GOOS, "arm64", ""), runtime.GOOS + "/arm64"},
		{"x86_64", plat(runtime.GOOS, "amd64", ""), runtime.GOOS + "/amd64"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			p, err := Parse(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if !exact(p, tc.want) {
				t.Fatalf("got %+v want %+v", p, tc.want)
			}
			if tc.format != "" && Format(p) != tc.format {
				t.Fatalf("Format: got %q want %q", Format(p), tc.format)
			}
			again, err := Parse(Format(p))
			if err != nil || !exact(again, p) {
				t.Fatalf("Format %q does not round-trip: %+v %v", Format(p), again, err)
			}
		})
	}
}

func TestParseInvalid(t *testing.T) {
	for _, in := range []string{"", "linux/", "/amd64", "linux/amd64/v8/x", "linux/*", "linux amd64", "nosuchthing", "linux/amd64/v 1"} {
		if _, err := Parse(in); !errdefs.IsInvalidArgument(err) {
			t.Errorf("Parse(%q): want InvalidArgument, got %v", in, err)
		}
	}
}

func TestDefault(t *testing.T) {
	d := Default()
	if d.OS != runtime.GOOS || d.Architecture != runtime.GOARCH {
		t.Fatalf("Default: %+v", d)
	}
	if _, err := Parse(DefaultString()); err != nil {
		t.Fatal(err)
	}
	if !DefaultMatcher().Match(d) {
		t.Fatal("default matcher refuses the default platform")
	}
	for in, want := range map[string]string{"7": "v7", "6": "v6", "5TE": "v5", "8": "v7", "": "v7"} {
		if got := armVariant(in); got != want {
			t.Errorf("armVariant(%q) = %q want %q", in, got, want)
		}
	}
}

func TestOnly(t *testing.T) {
	for _, tc := range []struct {
		only    string
		accepts []string
		refuses []string
	}{
		{"linux/amd64", []string{"linux/amd64", "linux/x86_64", "linux/amd64/v1", "linux/386"}, []string{"linux/arm64", "windows/amd64", "linux/amd64/v2", "linux/arm"}},
		{"linux/amd64/v3", []string{"linux/amd64/v3", "linux/amd64/v2", "linux/amd64", "linux/386"}, []string{"linux/amd64/v4"}},
		{"linux/arm64", []string{"linux/arm64", "linux/arm64/v8", "linux/arm/v8", "linux/arm/v7", "linux/arm/v5"}, []string{"linux/amd64", "linux/arm64/v9"}},
		{"linux/arm/v7", []string{"linux/arm", "linux/arm/v6", "linux/arm/v5"}, []string{"linux/arm/v8", "linux/arm64"}},
		{"linux/arm/v5", []string{"linux/arm/v5"}, []string{"linux/arm/v6", "linux/arm"}},
		{"linux/s390x", []string{"linux/s390x"}, []string{"linux/amd64"}},
	} {
		m := Only(MustParse(tc.only))
		for _, a := range tc.accepts {
			if !m.Match(MustParse(a)) {
				t.Errorf("Only(%s) refuses %s", tc.only, a)
			}
		}
		for _, r := range tc.refuses {
			if m.Match(MustParse(r)) {
				t.Errorf("Only(%s) accepts %s", tc.only, r)
			}
		}
	}
}

func TestOrdering(t *testing.T) {
	// An index lists platforms in some order; the best match sorts first.
	index := []ocispec.Platform{
		plat("linux", "arm", "v6"), plat("linux", "386", ""), plat("linux", "arm64", "v8"),
		plat("linux", "arm", "v7"), plat("linux", "amd64", ""), plat("windows", "amd64", ""),
	}
	for _, tc := range []struct{ only, best string }{
		{"linux/amd64", "linux/amd64"},
		{"linux/arm64", "linux/arm64"},
		{"linux/arm/v8", "linux/arm/v7"},
		{"linux/arm/v6", "linux/arm/v6"},
	} {
		m := Only(MustParse(tc.only))
		ps := append([]ocispec.Platform(nil), index...)
		sort.SliceStable(ps, func(i, j int) bool { return m.Less(ps[i], ps[j]) })
		if got := Format(Normalize(ps[0])); got != tc.best {
			t.Errorf("Only(%s): best is %s, want %s", tc.only, got, tc.best)
		}
	}
	if OnlyStrict(MustParse("linux/amd64")).Match(MustParse("linux/386")) {
		t.Error("OnlyStrict(amd64) accepts 386")
	}
	if !All.Match(plat("plan9", "mips", "")) || All.Less(plat("a", "b", ""), plat("c", "d", "")) {
		t.Error("All")
	}
	anyM := Any(MustParse("linux/amd64"), MustParse("linux/arm64"))
	if !anyM.Match(MustParse("linux/arm64")) || anyM.Match(MustParse("linux/386")) || anyM.Less(MustParse("linux/amd64"), MustParse("linux/arm64")) {
		t.Error("Any")
	}
	if !NewMatcher(MustParse("linux/arm64")).Match(plat("linux", "aarch64", "8")) {
		t.Error("NewMatcher does not normalise")
	}
}
