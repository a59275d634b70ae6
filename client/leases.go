package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	leasesapi "github.com/berth-containers/berth/api/services/leases/v1"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/leases"
)

// Lease is a lease record: while it exists, what was made under it is not
// garbage collected.
type Lease struct {
	ID        string
	CreatedAt time.Time
	Labels    map[string]string
}

// LeaseResource is a resource held by a lease.
type LeaseResource struct {
	ID   string
	Type string
}

// Leases manages leases.
type Leases struct{ c *Client }

// Leases returns the lease manager.
func (c *Client) Leases() *Leases { return &Leases{c: c} }

// ExpireLabel is the label that makes the garbage collector drop a lease after a time.
const ExpireLabel = "containerd.io/gc.expire"

// LeaseOpt configures a new lease.
type LeaseOpt func(*Lease)

// WithLeaseID names the lease.
func WithLeaseID(id string) LeaseOpt { return func(l *Lease) { l.ID = id } }

// WithLeaseLabels sets labels.
func WithLeaseLabels(labels map[string]string) LeaseOpt {
	return func(l *Lease) {
		if l.Labels == nil {
			l.Labels = map[string]string{}
		}
		for k, v := range labels {
			l.Labels[k] = v
		}
	}
}

// WithExpiration makes the lease expire after d.
func WithExpiration(d time.Duration) LeaseOpt {
	return WithLeaseLabels(map[string]string{ExpireLabel: time.Now().Add(d).UTC().Format(time.RFC3339)})
}

func randomID() string {
	var b [8]byte
	rand.Read(b[:])
	return time.Now().UTC().Format("20060102150405") + "-" + hex.EncodeToString(b[:])
}

// Create creates a lease.
func (l *Leases) Create(ctx context.Context, opts ...LeaseOpt) (Lease, error) {
	lease := Lease{ID: randomID()}
	for _, o := range opts {
		o(&lease)
	}
	r, err := l.c.LeasesService().Create(ctx, &leasesapi.CreateRequest{Id: lease.ID, Labels: lease.Labels})
	if err != nil {
		return Lease{}, errdefs.FromGRPC(err)
	}
	return leaseFromProto(r.Lease), nil
}

func leaseFromProto(p *leasesapi.Lease) Lease {
	return Lease{ID: p.GetId(), CreatedAt: p.GetCreatedAt().AsTime(), Labels: p.GetLabels()}
}

// List lists leases matching any of the filters.
func (l *Leases) List(ctx context.Context, filters ...string) ([]Lease, error) {
	r, err := l.c.LeasesService().List(ctx, &leasesapi.ListRequest{Filters: filters})
	if err != nil {
		return nil, errdefs.FromGRPC(err)
	}
	out := make([]Lease, 0, len(r.Leases))
	for _, p := range r.Leases {
		out = append(out, leaseFromProto(p))
	}
	return out, nil
}

// Delete deletes a lease; with sync it waits for the garbage collection it triggers.
func (l *Leases) Delete(ctx context.Context, id string, sync bool) error {
	_, err := l.c.LeasesService().Delete(ctx, &leasesapi.DeleteRequest{Id: id, Sync: sync})
	return errdefs.FromGRPC(err)
}

// AddResource adds a resource to a lease.
func (l *Leases) AddResource(ctx context.Context, id string, r LeaseResource) error {
	_, err := l.c.LeasesService().AddResource(ctx, &leasesapi.AddResourceRequest{Id: id, Resource: &leasesapi.Resource{Id: r.ID, Type: r.Type}})
	return errdefs.FromGRPC(err)
}

// DeleteResource removes a resource from a lease.
func (l *Leases) DeleteResource(ctx context.Context, id string, r LeaseResource) error {
	_, err := l.c.LeasesService().DeleteResource(ctx, &leasesapi.DeleteResourceRequest{Id: id, Resource: &leasesapi.Resource{Id: r.ID, Type: r.Type}})
	return errdefs.FromGRPC(err)
}

// ListResources lists a lease's resources.
func (l *Leases) ListResources(ctx context.Context, id string) ([]LeaseResource, error) {
	r, err := l.c.LeasesService().ListResources(ctx, &leasesapi.ListResourcesRequest{Id: id})
	if err != nil {
		return nil, errdefs.FromGRPC(err)
	}
	out := make([]LeaseResource, 0, len(r.Resources))
	for _, p := range r.Resources {
		out = append(out, LeaseResource{ID: p.Id, Type: p.Type})
	}
	return out, nil
}

// WithLease returns a context under a new lease that expires in 24 hours
// (so a crashed client leaks nothing for long), and a func that deletes
// it. If ctx already carries a lease, that one is used and done is a no-op.
func (c *Client) WithLease(ctx context.Context, opts ...LeaseOpt) (context.Context, func(context.Context) error, error) {
	if _, ok := leases.FromContext(ctx); ok {
		return ctx, func(context.Context) error { return nil }, nil
	}
	l, err := c.Leases().Create(ctx, append([]LeaseOpt{WithExpiration(24 * time.Hour)}, opts...)...)
	if err != nil {
		return ctx, nil, err
	}
	ctx = leases.WithLease(ctx, l.ID)
	return ctx, func(ctx context.Context) error {
		return c.Leases().Delete(ctx, l.ID, false)
	}, nil
}
