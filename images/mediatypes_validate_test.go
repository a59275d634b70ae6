package images

import (
	"regexp"
	"strings"
	"testing"
)

// mediaTypeSpec is RFC 6838's type/subtype as a regexp: the definition
// ValidateMediaType implements by hand.
var mediaTypeSpec = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$`)

func TestValidateMediaType(t *testing.T) {
	long := strings.Repeat("a", 127)
	for _, mt := range []string{
		"application/vnd.oci.image.manifest.v1+json",
		"application/vnd.docker.image.rootfs.diff.tar.gzip",
		"a/b", "A1/b!#$&^_.+-", long + "/" + long,
		"", "/", "a/", "/b", "a", "a/b/c", "-a/b", "a/.b", "a b/c", "a/b;charset=utf-8",
		long + "a/b", "a/" + long + "b", "application/json\n", "ä/b",
	} {
		err := ValidateMediaType(mt)
		if want := mediaTypeSpec.MatchString(mt); (err == nil) != want {
			t.Errorf("ValidateMediaType(%q) = %v, want valid %v", mt, err, want)
		}
	}
}

func FuzzValidateMediaType(f *testing.F) {
	f.Add("application/vnd.oci.image.layer.v1.tar+gzip")
	f.Add("a/b/c")
	f.Fuzz(func(t *testing.T, mt string) {
		if got, want := ValidateMediaType(mt) == nil, mediaTypeSpec.MatchString(mt); got != want {
			t.Fatalf("ValidateMediaType(%q) valid %v, regexp says %v", mt, got, want)
		}
	})
}
