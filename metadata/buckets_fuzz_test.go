package metadata

import (
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// FuzzReadAny: a stored Any read by hand (readAny, anyParses) never
// panics, and where proto.Unmarshal accepts the bytes it gives the same
// type URL and value.
func FuzzReadAny(f *testing.F) {
	for _, a := range []*anypb.Any{{}, {TypeUrl: "types.containerd.io/x", Value: []byte("v")}} {
		b, err := proto.Marshal(a)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0x0a, 0x01, 0xff})
	f.Fuzz(func(t *testing.T, v []byte) {
		got, err := readAny(v)
		if (err == nil) != anyParses(v) {
			t.Fatalf("readAny error %v but anyParses %v", err, anyParses(v))
		}
		var want anypb.Any
		if proto.Unmarshal(v, &want) != nil {
			return
		}
		if err != nil {
			t.Fatalf("proto accepts %x, readAny: %v", v, err)
		}
		if got.GetTypeUrl() != want.GetTypeUrl() || string(got.GetValue()) != string(want.GetValue()) {
			t.Fatalf("readAny %v, proto %v", got, &want)
		}
	})
}
