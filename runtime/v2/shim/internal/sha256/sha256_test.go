package sha256

import (
	stdsha256 "crypto/sha256"
	"math/rand"
	"testing"
)

func TestSum256MatchesCrypto(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	// Every length around the padding boundaries, and some long inputs.
	for n := 0; n < 300; n++ {
		for rep := 0; rep < 3; rep++ {
			b := make([]byte, n)
			r.Read(b)
			if got, want := Sum256(b), stdsha256.Sum256(b); got != want {
				t.Fatalf("len %d: got %x, want %x", n, got, want)
			}
		}
	}
	b := make([]byte, 1<<16+17)
	r.Read(b)
	if got, want := Sum256(b), stdsha256.Sum256(b); got != want {
		t.Fatalf("len %d: got %x, want %x", len(b), got, want)
	}
	// A known vector.
	if got := Sum256([]byte("abc")); got != stdsha256.Sum256([]byte("abc")) || got[0] != 0xba || got[31] != 0xad {
		t.Fatalf("abc: %x", got)
	}
}

func FuzzSum256(f *testing.F) {
	f.Add([]byte("/run/berth/berth.sock/default/abc"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := Sum256(b), stdsha256.Sum256(b); got != want {
			t.Fatalf("got %x, want %x", got, want)
		}
	})
}
