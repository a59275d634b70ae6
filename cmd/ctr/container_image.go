package main

import (
	"context"
	"errors"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/client"
	"github.com/berth-containers/berth/oci"
	"github.com/berth-containers/berth/pkg/platforms"
	"github.com/berth-containers/berth/snapshots"
)

func init() {
	imageContainerOpts = containerFromImage
	deleteSnapshotOpt = client.WithSnapshotCleanup
}

// containerFromImage gives a container a writable snapshot on top of the
// image (unpacking it if needed) and a spec from the image's config.
func containerFromImage(ctx context.Context, c *cli.Context, cl *client.Client, ref, id string) ([]client.NewContainerOpts, []oci.SpecOpts, error) {
	var matcher platforms.MatchComparer
	if p := c.String("platform"); p != "" {
		pl, err := platforms.Parse(p)
		if err != nil {
			return nil, nil, err
		}
		matcher = platforms.Only(pl)
	}
	img, err := cl.ResolveImage(ctx, ref, matcher)
	if err != nil {
		return nil, nil, err
	}
	sn := c.String("snapshotter")
	if sn == "" {
		if sn, err = cl.DefaultSnapshotterFor(ctx); err != nil {
			return nil, nil, err
		}
	}
	specOpts := []oci.SpecOpts{oci.WithImageConfig(img.Config.Config)}
	userns, err := userNamespaceOpt(c)
	if err != nil {
		return nil, nil, err
	}
	if userns == nil {
		if c.Bool("remap-labels") {
			return nil, nil, errors.New("--remap-labels needs --uidmap and --gidmap")
		}
		// User names resolve through the container's own snapshot, which
		// the client mounts read-only for the moment it takes.
		return []client.NewContainerOpts{client.WithSnapshotter(sn), client.WithNewSnapshot(id, img)}, specOpts, nil
	}
	if c.Bool("remap-labels") {
		// The snapshotter maps the ids (ours with idmapped mounts): no
		// copy of the image, as containerd's ctr asks with these labels.
		labels := snapshots.WithLabels(map[string]string{
			snapshots.LabelSnapshotUIDMapping: fmt.Sprintf("%d:%d:%d", userns.uid.ContainerID, userns.uid.HostID, userns.uid.Size),
			snapshots.LabelSnapshotGIDMapping: fmt.Sprintf("%d:%d:%d", userns.gid.ContainerID, userns.gid.HostID, userns.gid.Size),
		})
		return []client.NewContainerOpts{client.WithSnapshotter(sn), client.WithNewSnapshot(id, img, labels)},
			append(specOpts, userns.opt), nil
	}
	// In a user namespace the image's files must belong to its ids as
	// mapped: a copy of the image shifted to the host ids its root maps to.
	// A file of the image owned by container id N is owned by host id
	// N + HostID - ContainerID.
	if userns.uid.HostID < userns.uid.ContainerID || userns.gid.HostID < userns.gid.ContainerID {
		return nil, nil, errors.New("--uidmap/--gidmap: a host id below its container id would shift the image's files to lower ids; not supported")
	}
	opts := []client.NewContainerOpts{client.WithSnapshotter(sn),
		client.WithRemappedSnapshot(id, img, userns.uid.HostID-userns.uid.ContainerID, userns.gid.HostID-userns.gid.ContainerID)}
	return opts, append(specOpts, userns.opt), nil
}

type userNamespace struct {
	uid, gid specs.LinuxIDMapping
	opt      oci.SpecOpts
}

// userNamespaceOpt reads --uidmap and --gidmap: nil without them.
func userNamespaceOpt(c *cli.Context) (*userNamespace, error) {
	um, gm := c.String("uidmap"), c.String("gidmap")
	if um == "" && gm == "" {
		return nil, nil
	}
	if um == "" || gm == "" {
		return nil, errors.New("--uidmap and --gidmap must be given together")
	}
	var u userNamespace
	for _, m := range []struct {
		flag, val string
		out       *specs.LinuxIDMapping
	}{{"uidmap", um, &u.uid}, {"gidmap", gm, &u.gid}} {
		cid, hid, size, err := client.ParseIDMapping(m.val)
		if err != nil {
			return nil, fmt.Errorf("--%s: %w", m.flag, err)
		}
		*m.out = specs.LinuxIDMapping{ContainerID: cid, HostID: hid, Size: size}
	}
	u.opt = oci.WithUserNamespace([]specs.LinuxIDMapping{u.uid}, []specs.LinuxIDMapping{u.gid})
	return &u, nil
}
