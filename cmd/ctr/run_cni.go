package main

import (
	"context"
	"fmt"

	"github.com/berth-containers/berth/client"
	"github.com/berth-containers/berth/pkg/cni"
)

// cniNetwork is `ctr run --cni`: the loopback network and the first
// network of the CNI configuration directory (NETCONFPATH, default
// /etc/cni/net.d) as eth0, with plugins from CNI_PATH (default
// /opt/cni/bin and Debian's /usr/lib/cni), attached to the task's network
// namespace before it starts. As with containerd's ctr, an attached run
// detaches them when the task is gone; a detached run leaves them (and
// their addresses) attached.
type cniNetwork struct {
	namespace string
	plugins   *cni.Plugins
	networks  []*cni.Network
	ifnames   []string
}

// loadCNI reads the configuration, before anything is created.
func loadCNI(namespace string) (*cniNetwork, error) {
	n, err := cni.LoadDefault(cni.ConfDirFromEnv())
	if err != nil {
		return nil, err
	}
	return &cniNetwork{namespace: namespace, plugins: cni.PluginsFromEnv(),
		networks: []*cni.Network{cni.Loopback(), n}, ifnames: []string{"lo", "eth0"}}, nil
}

// containerID is the id the plugins know the container by: containerd's
// "<namespace>-<id>".
func (n *cniNetwork) containerID(ct *client.Container) string {
	return n.namespace + "-" + ct.ID()
}

// setup attaches every network to the created task's namespace; on
// failure what was attached is detached again.
func (n *cniNetwork) setup(ctx context.Context, ct *client.Container, task *client.Task) error {
	for i, nw := range n.networks {
		a := cni.Attachment{ContainerID: n.containerID(ct), NetNS: fmt.Sprintf("/proc/%d/ns/net", task.Pid()), IfName: n.ifnames[i]}
		if _, err := n.plugins.Add(ctx, nw, a); err != nil {
			n.teardownFirst(context.WithoutCancel(ctx), ct, i)
			return err
		}
	}
	return nil
}

// teardown detaches every network, the namespace gone or not (the
// plugins then release what they hold: addresses, host ends).
func (n *cniNetwork) teardown(ctx context.Context, ct *client.Container) error {
	return n.teardownFirst(ctx, ct, len(n.networks))
}

func (n *cniNetwork) teardownFirst(ctx context.Context, ct *client.Container, count int) error {
	var first error
	for i := count - 1; i >= 0; i-- {
		a := cni.Attachment{ContainerID: n.containerID(ct), IfName: n.ifnames[i]}
		if err := n.plugins.Del(ctx, n.networks[i], a); err != nil && first == nil {
			first = err
		}
	}
	return first
}
