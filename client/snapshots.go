package client

import (
	"context"

	snapshotsapi "github.com/berth-containers/berth/api/services/snapshots/v1"
	"github.com/berth-containers/berth/pkg/namespaces"
	"github.com/berth-containers/berth/snapshots"
)

// SnapshotterLabel on a namespace names its default snapshotter.
const SnapshotterLabel = "containerd.io/defaults/snapshotter"

// SnapshotsAPIService is the raw Snapshots service client.
func (c *Client) SnapshotsAPIService() snapshotsapi.SnapshotsClient {
	return snapshotsapi.NewSnapshotsClient(c.conn)
}

// SnapshotService returns the snapshotter named name ("" for the
// client's default).
func (c *Client) SnapshotService(name string) snapshots.Snapshotter {
	if name == "" {
		name = c.snapshotter
	}
	return NewRemoteSnapshotter(c.SnapshotsAPIService(), name)
}

// DefaultSnapshotterFor returns the snapshotter to use in ctx's namespace:
// the namespace's containerd.io/defaults/snapshotter label if set, else
// the client's default. A namespace that does not exist yet has no label.
func (c *Client) DefaultSnapshotterFor(ctx context.Context) (string, error) {
	ctx = c.withNamespace(ctx)
	ns, _ := namespaces.Namespace(ctx)
	labels, err := c.namespaceDefaults(ctx, ns)
	if err != nil {
		return "", err
	}
	if sn := labels[SnapshotterLabel]; sn != "" {
		return sn, nil
	}
	return c.snapshotter, nil
}
