package platforms

import "testing"

func FuzzParse(f *testing.F) {
	for _, s := range []string{"linux/arm/v8.0.0", "linux/amd64/.0", "linux/amd64", "linux/arm/v7", "arm64", "linux", "a/b/c/d", "LINUX/X86_64/V1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := Parse(s)
		if err != nil {
			return
		}
		// A parsed platform is normalised and its format parses back to it.
		if !exact(p, Normalize(p)) {
			t.Fatalf("%q: %+v is not normalised", s, p)
		}
		again, err := Parse(Format(p))
		if err != nil || !exact(again, p) {
			t.Fatalf("%q: %q re-parses to %+v, %v", s, Format(p), again, err)
		}
	})
}
