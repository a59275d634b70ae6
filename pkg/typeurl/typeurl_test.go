package typeurl

import (
	"testing"

	"github.com/berth-containers/berth/pkg/errdefs"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

type fakeSpec struct {
	Version  string `json:"ociVersion"`
	Hostname string `json:"hostname,omitempty"`
}

func init() { Register(fakeSpec{}, "test.berth/fakeSpec") }

func TestProtoBareName(t *testing.T) {
	a, err := MarshalAny(timestamppb.Now())
	if err != nil {
		t.Fatal(err)
	}
	if a.TypeUrl != "google.protobuf.Timestamp" {
		t.Fatalf("url %q", a.TypeUrl)
	}
	v, err := UnmarshalAny(a)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := v.(*timestamppb.Timestamp); !ok {
		t.Fatalf("got %T", v)
	}
	a.TypeUrl = "type.googleapis.com/google.protobuf.Timestamp"
	if _, err := UnmarshalAny(a); err != nil {
		t.Fatalf("prefixed url: %v", err)
	}
	if !Is(a, &timestamppb.Timestamp{}) {
		t.Fatal("Is")
	}
}

func TestJSONType(t *testing.T) {
	a, err := MarshalAny(&fakeSpec{Version: "1.0.2", Hostname: "h"})
	if err != nil {
		t.Fatal(err)
	}
	var out fakeSpec
	if err := UnmarshalTo(a, &out); err != nil || out.Hostname != "h" {
		t.Fatalf("%v %+v", err, out)
	}
	v, err := UnmarshalAny(a)
	if err != nil || v.(*fakeSpec).Version != "1.0.2" {
		t.Fatalf("%v %+v", err, v)
	}
}

func TestBad(t *testing.T) {
	for _, a := range []*anypb.Any{
		nil,
		{TypeUrl: "no.such.Type"},
		{TypeUrl: "test.berth/fakeSpec", Value: []byte("{")},
		{TypeUrl: "google.protobuf.Timestamp", Value: []byte{0xff}},
	} {
		if _, err := UnmarshalAny(a); err == nil {
			t.Errorf("%v: decoded", a)
		} else if !errdefs.IsInvalidArgument(err) && !errdefs.IsNotFound(err) {
			t.Errorf("%v: kind %v", a, err)
		}
	}
}
