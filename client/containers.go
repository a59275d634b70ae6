package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	containersapi "github.com/berth-containers/berth/api/services/containers/v1"
	"github.com/berth-containers/berth/mount"
	"github.com/berth-containers/berth/oci"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/typeurl"
)

// RuntimeInfo names a container's runtime and its options.
type RuntimeInfo struct {
	Name    string
	Options *anypb.Any
}

// ContainerInfo is a container record.
type ContainerInfo struct {
	ID          string
	Labels      map[string]string
	Image       string
	Runtime     RuntimeInfo
	Spec        *anypb.Any
	SnapshotKey string
	Snapshotter string
	CreatedAt   time.Time
	UpdatedAt   time.Time
	Extensions  map[string]*anypb.Any

	// preparedSnapshot is set when an option prepared SnapshotKey for
	// this container, so a failed create removes it again.
	preparedSnapshot bool
	// rootfsMounts are the prepared snapshot's mounts; spec options that
	// read the image (user names) mount them briefly instead of asking
	// the daemon for a separate view.
	rootfsMounts []mount.Mount
}

func containerToProto(c *ContainerInfo) *containersapi.Container {
	return &containersapi.Container{
		Id: c.ID, Labels: c.Labels, Image: c.Image,
		Runtime:     &containersapi.Container_Runtime{Name: c.Runtime.Name, Options: c.Runtime.Options},
		Spec:        c.Spec,
		Snapshotter: c.Snapshotter, SnapshotKey: c.SnapshotKey, Extensions: c.Extensions,
	}
}

func containerFromProto(p *containersapi.Container) ContainerInfo {
	return ContainerInfo{
		ID: p.GetId(), Labels: p.GetLabels(), Image: p.GetImage(),
		Runtime:     RuntimeInfo{Name: p.GetRuntime().GetName(), Options: p.GetRuntime().GetOptions()},
		Spec:        p.GetSpec(),
		SnapshotKey: p.GetSnapshotKey(), Snapshotter: p.GetSnapshotter(),
		CreatedAt: p.GetCreatedAt().AsTime(), UpdatedAt: p.GetUpdatedAt().AsTime(),
		Extensions: p.GetExtensions(),
	}
}

// NewContainerOpts configures a new container record.
type NewContainerOpts func(ctx context.Context, c *Client, info *ContainerInfo) error

// WithSpec sets the runtime spec.
func WithSpec(s *specs.Spec) NewContainerOpts {
	return func(ctx context.Context, _ *Client, info *ContainerInfo) error {
		a, err := typeurl.MarshalAny(s)
		if err != nil {
			return fmt.Errorf("marshal spec: %w", err)
		}
		info.Spec = a
		return nil
	}
}

// WithNewSpec generates a default spec for the container, then applies opts.
func WithNewSpec(opts ...oci.SpecOpts) NewContainerOpts {
	return func(ctx context.Context, c *Client, info *ContainerInfo) error {
		ci := &oci.ContainerInfo{ID: info.ID, Namespace: c.namespaceOf(ctx), Image: info.Image,
			Snapshotter: info.Snapshotter, SnapshotKey: info.SnapshotKey}
		if len(info.rootfsMounts) > 0 {
			mounts := readOnly(info.rootfsMounts)
			ci.Layers = rootfsLayers(mounts)
			ci.Rootfs = func(ctx context.Context, fn func(root string) error) error {
				return mount.WithTempMount(ctx, mounts, fn)
			}
		}
		s, err := oci.GenerateSpec(ctx, ci, opts...)
		if err != nil {
			return err
		}
		return WithSpec(s)(ctx, c, info)
	}
}

// WithRuntime sets the runtime name and options.
func WithRuntime(name string, options *anypb.Any) NewContainerOpts {
	return func(_ context.Context, _ *Client, info *ContainerInfo) error {
		info.Runtime = RuntimeInfo{Name: name, Options: options}
		return nil
	}
}

// WithImageName records the image the container was made from.
func WithImageName(ref string) NewContainerOpts {
	return func(_ context.Context, _ *Client, info *ContainerInfo) error { info.Image = ref; return nil }
}

// WithContainerLabels sets labels.
func WithContainerLabels(labels map[string]string) NewContainerOpts {
	return func(_ context.Context, _ *Client, info *ContainerInfo) error {
		if info.Labels == nil {
			info.Labels = map[string]string{}
		}
		for k, v := range labels {
			info.Labels[k] = v
		}
		return nil
	}
}

// WithSnapshotter sets the snapshotter the container's snapshot lives in.
func WithSnapshotter(name string) NewContainerOpts {
	return func(_ context.Context, _ *Client, info *ContainerInfo) error { info.Snapshotter = name; return nil }
}

// WithSnapshot uses an existing snapshot key as the container's rootfs.
func WithSnapshot(key string) NewContainerOpts {
	return func(_ context.Context, _ *Client, info *ContainerInfo) error { info.SnapshotKey = key; return nil }
}

// WithContainerExtension stores an extension value under name.
func WithContainerExtension(name string, v interface{}) NewContainerOpts {
	return func(_ context.Context, _ *Client, info *ContainerInfo) error {
		a, err := typeurl.MarshalAny(v)
		if err != nil {
			return fmt.Errorf("marshal extension %q: %w", name, err)
		}
		if info.Extensions == nil {
			info.Extensions = map[string]*anypb.Any{}
		}
		info.Extensions[name] = a
		return nil
	}
}

// Container is a handle on a container record.
type Container struct {
	c  *Client
	id string
	// rec is the record as created or loaded. Only what containerd
	// makes immutable (runtime, snapshotter, snapshot key) is read from
	// it; everything else is fetched fresh by Info.
	rec *ContainerInfo
	// rootfs is the snapshot's mounts as NewContainer's Prepare returned
	// them, so the first NewTask needs no Mounts round trip.
	rootfs []mount.Mount
}

// ID is the container's ID.
func (ct *Container) ID() string { return ct.id }

// NewContainer creates a container record. Without a runtime it gets the
// client's default; without a spec, a default one.
func (c *Client) NewContainer(ctx context.Context, id string, opts ...NewContainerOpts) (*Container, error) {
	ctx = c.withNamespace(ctx)
	info := ContainerInfo{ID: id, Runtime: RuntimeInfo{Name: c.runtime}}
	cleanup := func() {
		if info.preparedSnapshot {
			WithSnapshotCleanup(context.WithoutCancel(ctx), c, info)
		}
	}
	for _, o := range opts {
		if err := o(ctx, c, &info); err != nil {
			cleanup()
			return nil, err
		}
	}
	if info.Spec == nil {
		if err := WithNewSpec()(ctx, c, &info); err != nil {
			cleanup()
			return nil, err
		}
	}
	r, err := c.ContainerService().Create(ctx, &containersapi.CreateContainerRequest{Container: containerToProto(&info)})
	if err != nil {
		cleanup()
		return nil, errdefs.FromGRPC(err)
	}
	rec := containerFromProto(r.Container)
	return &Container{c: c, id: r.Container.GetId(), rec: &rec, rootfs: info.rootfsMounts}, nil
}

// LoadContainer returns a handle on an existing container.
func (c *Client) LoadContainer(ctx context.Context, id string) (*Container, error) {
	ctx = c.withNamespace(ctx)
	r, err := c.ContainerService().Get(ctx, &containersapi.GetContainerRequest{Id: id})
	if err != nil {
		return nil, errdefs.FromGRPC(err)
	}
	rec := containerFromProto(r.Container)
	return &Container{c: c, id: id, rec: &rec}, nil
}

// record returns the record the handle was made with, else fetches it:
// for the immutable parts (runtime, snapshotter, snapshot key) that task
// creation and deletion need, without a round trip each.
func (ct *Container) record(ctx context.Context) (ContainerInfo, error) {
	if ct.rec != nil {
		return *ct.rec, nil
	}
	return ct.Info(ctx)
}

// Containers lists container records matching any of the filters.
func (c *Client) Containers(ctx context.Context, filters ...string) ([]ContainerInfo, error) {
	ctx = c.withNamespace(ctx)
	r, err := c.ContainerService().List(ctx, &containersapi.ListContainersRequest{Filters: filters})
	if err != nil {
		return nil, errdefs.FromGRPC(err)
	}
	out := make([]ContainerInfo, 0, len(r.Containers))
	for _, p := range r.Containers {
		out = append(out, containerFromProto(p))
	}
	return out, nil
}

// Info returns the container record.
func (ct *Container) Info(ctx context.Context) (ContainerInfo, error) {
	ctx = ct.c.withNamespace(ctx)
	r, err := ct.c.ContainerService().Get(ctx, &containersapi.GetContainerRequest{Id: ct.id})
	if err != nil {
		return ContainerInfo{}, errdefs.FromGRPC(err)
	}
	return containerFromProto(r.Container), nil
}

// Spec decodes the container's runtime spec.
func (ct *Container) Spec(ctx context.Context) (*specs.Spec, error) {
	info, err := ct.Info(ctx)
	if err != nil {
		return nil, err
	}
	var s specs.Spec
	if err := typeurl.UnmarshalTo(info.Spec, &s); err != nil {
		return nil, fmt.Errorf("container %q spec: %w", ct.id, err)
	}
	return &s, nil
}

// Labels returns the container's labels.
func (ct *Container) Labels(ctx context.Context) (map[string]string, error) {
	info, err := ct.Info(ctx)
	return info.Labels, err
}

// SetLabels sets the given labels (an empty value removes a label) and
// returns the resulting set.
func (ct *Container) SetLabels(ctx context.Context, labels map[string]string) (map[string]string, error) {
	ctx = ct.c.withNamespace(ctx)
	paths := make([]string, 0, len(labels))
	for k := range labels {
		paths = append(paths, "labels."+k)
	}
	r, err := ct.c.ContainerService().Update(ctx, &containersapi.UpdateContainerRequest{
		Container:  &containersapi.Container{Id: ct.id, Labels: labels},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: paths},
	})
	if err != nil {
		return nil, errdefs.FromGRPC(err)
	}
	return r.Container.GetLabels(), nil
}

// DeleteOpts cleans up what a container record held (e.g. its snapshot);
// Delete runs them once the record is gone.
type DeleteOpts func(ctx context.Context, c *Client, info ContainerInfo) error

// Delete deletes the container record, then runs opts: clean-ups of what
// the record held, such as WithSnapshotCleanup. The record goes first
// because the daemon refuses it while the container has a task; removing
// the snapshot first (containerd's client order) would take a running
// container's root file system away and then report that the container
// could not be deleted. If an opt fails, the record is gone all the same
// and what the opt would have removed is left to garbage collection.
func (ct *Container) Delete(ctx context.Context, opts ...DeleteOpts) error {
	ctx = ct.c.withNamespace(ctx)
	var info ContainerInfo
	if len(opts) > 0 {
		var err error
		if info, err = ct.record(ctx); err != nil {
			return err
		}
	}
	if _, err := ct.c.ContainerService().Delete(ctx, &containersapi.DeleteContainerRequest{Id: ct.id}); err != nil {
		return errdefs.FromGRPC(err)
	}
	var errs []error
	for _, o := range opts {
		errs = append(errs, o(ctx, ct.c, info))
	}
	return errors.Join(errs...)
}

// DeleteTaskless is Delete for a container whose task the caller has just
// deleted (`ctr run --rm`): the record's deletion and the opts run at the
// same time, each request in flight beside the others.
func (ct *Container) DeleteTaskless(ctx context.Context, opts ...DeleteOpts) error {
	ctx = ct.c.withNamespace(ctx)
	info, err := ct.record(ctx)
	if err != nil {
		return err
	}
	errs := make([]error, len(opts)+1)
	var wg sync.WaitGroup
	for i, o := range opts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = o(ctx, ct.c, info)
		}()
	}
	_, err = ct.c.ContainerService().Delete(ctx, &containersapi.DeleteContainerRequest{Id: ct.id})
	errs[len(opts)] = errdefs.FromGRPC(err)
	wg.Wait()
	return errors.Join(errs...)
}

func (c *Client) namespaceOf(ctx context.Context) string {
	ns, _ := namespaceFrom(c.withNamespace(ctx))
	return ns
}

// Client is the client the container was loaded with.
func (ct *Container) Client() *Client { return ct.c }

// readOnly returns copies of mounts with "ro" added: reading the image's
// files must not change the container's snapshot.
func readOnly(ms []mount.Mount) []mount.Mount {
	out := make([]mount.Mount, 0, len(ms))
	for _, m := range ms {
		opts := []string{"ro"}
		for _, o := range m.Options {
			if o != "rw" && o != "ro" {
				opts = append(opts, o)
			}
		}
		m.Options = opts
		out = append(out, m)
	}
	return out
}
