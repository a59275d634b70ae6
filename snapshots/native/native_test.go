package native

import (
	"context"
	"testing"

	"github.com/berth-containers/berth/snapshots"
	"github.com/berth-containers/berth/snapshots/testsuite"
)

func TestNativeConformance(t *testing.T) {
	testsuite.Run(t, func(ctx context.Context, root string) (snapshots.Snapshotter, error) {
		return New(root)
	})
}
