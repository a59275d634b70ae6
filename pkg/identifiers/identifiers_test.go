package identifiers

import (
	"regexp"
	"strings"
	"testing"

	"github.com/berth-containers/berth/pkg/errdefs"
)

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"web", true},
		{"k8s.io", true},
		{"a-b_c.d", true},
		{"0", true},
		{strings.Repeat("a", 76), true},
		{strings.Repeat("a", 77), false},
		{"", false},
		{"-a", false},
		{"a-", false},
		{"a..b", false},
		{"../etc", false},
		{"a/b", false},
		{"a b", false},
		{"ä", false},
		{".", false},
	} {
		err := Validate(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("Validate(%q) = %v, want ok=%v", tc.in, err, tc.ok)
		}
		if err != nil && !errdefs.IsInvalidArgument(err) {
			t.Errorf("Validate(%q): not InvalidArgument: %v", tc.in, err)
		}
	}
}

func TestValidateName(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"455218903--vgB", true},
		{"323518450-prd_", true},
		{"sha256:c446fefaa01e8ed0a970338a2c4a204578da170d6fcb13e5a270e635abb63d16", true},
		{"default/1/extract-123 sha256:abc", true},
		{"", false},
		{"a\x00b", false},
		{"a\nb", false},
		{"\xff", false},
		{strings.Repeat("a", 4097), false},
	} {
		err := ValidateName("lease id", tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateName(%q) = %v, want ok=%v", tc.in, err, tc.ok)
		}
		if err != nil && !errdefs.IsInvalidArgument(err) {
			t.Errorf("ValidateName(%q): not InvalidArgument: %v", tc.in, err)
		}
	}
}

// TestMatchesRegexp checks the hand-written matcher against the rule's
// regular expression on generated strings.
func TestMatchesRegexp(t *testing.T) {
	re := regexp.MustCompile(pattern)
	alphabet := "aZ9._-/ "
	var gen func(prefix string, n int)
	gen = func(prefix string, n int) {
		if got, want := matches(prefix), re.MatchString(prefix); got != want {
			t.Errorf("matches(%q) = %v, regexp says %v", prefix, got, want)
		}
		if n == 0 {
			return
		}
		for i := 0; i < len(alphabet); i++ {
			gen(prefix+alphabet[i:i+1], n-1)
		}
	}
	gen("", 5)
}

func FuzzValidate(f *testing.F) {
	re := regexp.MustCompile(pattern)
	for _, s := range []string{"web", "a.b-c_d", "-a", "a..b", "k8s.io", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if matches(s) != re.MatchString(s) {
			t.Fatalf("matches(%q) disagrees with the regexp", s)
		}
	})
}
