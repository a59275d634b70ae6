package identifiers

import (
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
