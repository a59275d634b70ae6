package client

import (
	"reflect"
	"testing"

	"google.golang.org/protobuf/proto"

	containersapi "github.com/berth-containers/berth/api/services/containers/v1"
)

// FuzzSummaryDecoder: whatever the daemon sends, the hand-written list
// decoder never panics, gives the same answer however the bytes are split
// into buffers, and agrees with proto.Unmarshal where both accept.
func FuzzSummaryDecoder(f *testing.F) {
	for _, recs := range [][]*containersapi.Container{testRecords(1), testRecords(3), {{}}} {
		b, err := proto.Marshal(&containersapi.ListContainersResponse{Containers: recs})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint(len(b)/2))
	}
	f.Add([]byte{0x0a, 0x02, 0x0a, 0x7f}, uint(1))
	f.Fuzz(func(t *testing.T, data []byte, split uint) {
		var whole summaryDecoder
		errWhole := whole.decode(newPieces([][]byte{data}))
		cut := 0
		if len(data) > 0 {
			cut = int(split % uint(len(data)+1))
		}
		var parts summaryDecoder
		errParts := parts.decode(newPieces([][]byte{data[:cut], data[cut:]}))
		if (errWhole == nil) != (errParts == nil) || (errWhole == nil && !reflect.DeepEqual(whole.out, parts.out)) {
			t.Fatalf("split at %d changes the result: %v %v / %v %v", cut, whole.out, errWhole, parts.out, errParts)
		}
		var resp containersapi.ListContainersResponse
		if errWhole != nil || proto.Unmarshal(data, &resp) != nil {
			return
		}
		if want := summariesOf(resp.Containers); len(want) != len(whole.out) || (len(want) > 0 && !reflect.DeepEqual(want, whole.out)) {
			t.Fatalf("decoder %v, proto %v", whole.out, want)
		}
	})
}
