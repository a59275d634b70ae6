package client

import (
	"context"
	"sort"
	"sync"

	"google.golang.org/protobuf/types/known/fieldmaskpb"

	namespacesapi "github.com/berth-containers/berth/api/services/namespaces/v1"
	"github.com/berth-containers/berth/pkg/errdefs"
)

// Namespaces manages namespaces.
type Namespaces struct{ c *Client }

// Namespaces returns the namespace manager.
func (c *Client) Namespaces() *Namespaces { return &Namespaces{c: c} }

// Create creates a namespace with labels.
func (n *Namespaces) Create(ctx context.Context, name string, labels map[string]string) error {
	_, err := n.c.NamespaceService().Create(ctx, &namespacesapi.CreateNamespaceRequest{
		Namespace: &namespacesapi.Namespace{Name: name, Labels: labels},
	})
	return errdefs.FromGRPC(err)
}

// Labels returns a namespace's labels.
func (n *Namespaces) Labels(ctx context.Context, name string) (map[string]string, error) {
	r, err := n.c.NamespaceService().Get(ctx, &namespacesapi.GetNamespaceRequest{Name: name})
	if err != nil {
		return nil, errdefs.FromGRPC(err)
	}
	return r.Namespace.GetLabels(), nil
}

// SetLabel sets (or, with an empty value, removes) one label.
func (n *Namespaces) SetLabel(ctx context.Context, name, key, value string) error {
	_, err := n.c.NamespaceService().Update(ctx, &namespacesapi.UpdateNamespaceRequest{
		Namespace:  &namespacesapi.Namespace{Name: name, Labels: map[string]string{key: value}},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"labels." + key}},
	})
	return errdefs.FromGRPC(err)
}

// List returns the namespace names, sorted.
func (n *Namespaces) List(ctx context.Context) ([]string, error) {
	r, err := n.c.NamespaceService().List(ctx, &namespacesapi.ListNamespacesRequest{})
	if err != nil {
		return nil, errdefs.FromGRPC(err)
	}
	var out []string
	for _, ns := range r.Namespaces {
		out = append(out, ns.Name)
	}
	sort.Strings(out)
	return out, nil
}

// Delete deletes an empty namespace.
func (n *Namespaces) Delete(ctx context.Context, name string) error {
	_, err := n.c.NamespaceService().Delete(ctx, &namespacesapi.DeleteNamespaceRequest{Name: name})
	return errdefs.FromGRPC(err)
}

// nsDefaults caches the labels of namespaces the client read its defaults
// (runtime, snapshotter) from: one Get per namespace for the client's life
// rather than one per default asked for, which is a round trip off every
// `ctr run`. A namespace that does not exist has no labels.
type nsDefaults struct {
	mu     sync.Mutex
	labels map[string]map[string]string
}

func (c *Client) namespaceDefaults(ctx context.Context, ns string) (map[string]string, error) {
	c.nsDefaults.mu.Lock()
	defer c.nsDefaults.mu.Unlock()
	if l, ok := c.nsDefaults.labels[ns]; ok {
		return l, nil
	}
	l, err := c.Namespaces().Labels(ctx, ns)
	if err != nil && !errdefs.IsNotFound(err) {
		return nil, err
	}
	if c.nsDefaults.labels == nil {
		c.nsDefaults.labels = map[string]map[string]string{}
	}
	c.nsDefaults.labels[ns] = l
	return l, nil
}
