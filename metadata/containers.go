package metadata

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/filters"
	"github.com/berth-containers/berth/pkg/identifiers"
	"github.com/berth-containers/berth/pkg/namespaces"
	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/types/known/anypb"
)

// Container is a container's record: what to run and how, not a process.
type Container struct {
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
	SandboxID   string
}

// RuntimeInfo names the runtime (shim) and its options.
type RuntimeInfo struct {
	Name    string
	Options *anypb.Any
}

// ContainerStore keeps containers in the context's namespace.
type ContainerStore struct{ db *DB }

// NewContainerStore returns the container store backed by db.
func NewContainerStore(db *DB) *ContainerStore { return &ContainerStore{db: db} }

func containerErr(id, ns string, err error) error {
	return fmt.Errorf("container %q in namespace %q: %w", id, ns, err)
}

// Get returns container id; NotFound if it does not exist.
func (s *ContainerStore) Get(ctx context.Context, id string) (Container, error) {
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return Container{}, err
	}
	var c Container
	err = s.db.view(ctx, func(tx *bolt.Tx) error {
		b := nsBucket(tx, ns, bucketContainers, []byte(id))
		if b == nil {
			return containerErr(id, ns, errdefs.ErrNotFound)
		}
		c, err = readContainer(id, b)
		if err != nil {
			return containerErr(id, ns, err)
		}
		return nil
	})
	return c, err
}

// RootfsOwner returns which of the containers ids (those with a task,
// say) has snapshot key of snapshotter as its root file system. One read
// transaction and two field reads per container, not a decoded record each.
func (s *ContainerStore) RootfsOwner(ctx context.Context, ids []string, snapshotter, key string) (string, bool, error) {
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return "", false, err
	}
	var owner string
	err = s.db.view(ctx, func(tx *bolt.Tx) error {
		for _, id := range ids {
			b := nsBucket(tx, ns, bucketContainers, []byte(id))
			if b != nil && string(b.Get(keySnapshotKey)) == key && string(b.Get(keySnapshotter)) == snapshotter {
				owner = id
				return nil
			}
		}
		return nil
	})
	return owner, owner != "", err
}

// List returns the containers matching any of the filters (fields: id,
// image, runtime.name, snapshotter, snapshotkey, sandboxid, labels.KEY).
func (s *ContainerStore) List(ctx context.Context, exprs ...string) ([]Container, error) {
	return listObjects(ctx, s.db, bucketContainers, exprs, readContainer, containerAdaptor, containerErr)
}

// StoredContainer is a container record as stored, for a caller that
// re-encodes records without decoding them (a List reply): its byte
// slices point into the database's memory map and are valid only during
// the WalkStored callback that gets them.
type StoredContainer struct {
	ID, Image, Snapshotter, SnapshotKey, SandboxID []byte
	RuntimeName                                    []byte
	// Spec and RuntimeOptions are marshalled google.protobuf.Anys (nil
	// when unset), checked to parse as one.
	Spec, RuntimeOptions []byte
	CreatedAt, UpdatedAt time.Time

	labels, extensions *bolt.Bucket
}

// Labels calls fn with each label, in key order.
func (c *StoredContainer) Labels(fn func(k, v []byte)) { forEachValue(c.labels, fn) }

// Extensions calls fn with each extension's name and marshalled Any, in
// name order.
func (c *StoredContainer) Extensions(fn func(name, value []byte)) { forEachValue(c.extensions, fn) }

func forEachValue(b *bolt.Bucket, fn func(k, v []byte)) {
	if b == nil {
		return
	}
	cur := b.Cursor()
	for k, v := cur.First(); k != nil; k, v = cur.Next() {
		if v != nil {
			fn(k, v)
		}
	}
}

// WalkStored is Walk handing out records as stored, undecoded; see
// StoredContainer for how long they are valid. A record that does not
// parse ends the walk with the error Get or List would give for it.
func (s *ContainerStore) WalkStored(ctx context.Context, fn func(c *StoredContainer) error, exprs ...string) error {
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return err
	}
	f, err := filters.ParseAll(exprs...)
	if err != nil {
		return err
	}
	return s.db.view(ctx, func(tx *bolt.Tx) error {
		b := nsBucket(tx, ns, bucketContainers)
		if b == nil {
			return nil
		}
		var sc StoredContainer
		return b.ForEach(func(k, v []byte) error {
			if v != nil {
				return nil
			}
			cb := b.Bucket(k)
			if f != filters.Always {
				// Filters match decoded records; only a filtered list pays.
				c, err := readContainer(string(k), cb)
				if err != nil {
					return containerErr(string(k), ns, err)
				}
				if !f.Match(containerAdaptor(&c)) {
					return nil
				}
			}
			if err := readStoredContainer(k, cb, &sc); err != nil {
				return containerErr(string(k), ns, err)
			}
			return fn(&sc)
		})
	})
}

// readStoredContainer is readContainer without the decoding: one pass of
// a cursor, values left in place, Anys and times checked as readContainer
// checks them.
func readStoredContainer(id []byte, b *bolt.Bucket, c *StoredContainer) error {
	*c = StoredContainer{ID: id}
	cur := b.Cursor()
	for k, v := cur.First(); k != nil; k, v = cur.Next() {
		var err error
		if v == nil {
			switch {
			case bytes.Equal(k, bucketLabels):
				c.labels = b.Bucket(k)
			case bytes.Equal(k, bucketExtensions):
				c.extensions = b.Bucket(k)
				c.extensions.ForEach(func(name, v []byte) error {
					if err == nil && v != nil && !anyParses(v) {
						err = fmt.Errorf("extension %q: corrupt Any: %w", name, errdefs.ErrUnknown)
					}
					return nil
				})
			case bytes.Equal(k, bucketRuntime):
				forEachValue(b.Bucket(k), func(k, v []byte) {
					switch {
					case bytes.Equal(k, keyName):
						c.RuntimeName = v
					case bytes.Equal(k, keyOptions):
						c.RuntimeOptions = v
						if !anyParses(v) {
							err = fmt.Errorf("runtime options: corrupt Any: %w", errdefs.ErrUnknown)
						}
					}
				})
			}
		} else {
			switch {
			case bytes.Equal(k, keyImage):
				c.Image = v
			case bytes.Equal(k, keySpec):
				c.Spec = v
				if !anyParses(v) {
					err = fmt.Errorf("spec: corrupt Any: %w", errdefs.ErrUnknown)
				}
			case bytes.Equal(k, keySnapshotter):
				c.Snapshotter = v
			case bytes.Equal(k, keySnapshotKey):
				c.SnapshotKey = v
			case bytes.Equal(k, keySandboxID):
				c.SandboxID = v
			case bytes.Equal(k, keyCreatedAt):
				err = decodeTime(k, v, &c.CreatedAt)
			case bytes.Equal(k, keyUpdatedAt):
				err = decodeTime(k, v, &c.UpdatedAt)
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func containerAdaptor(c *Container) filters.Adaptor {
	return filters.AdapterFunc(func(fp []string) (string, bool) {
		if len(fp) == 0 {
			return "", false
		}
		switch fp[0] {
		case "id":
			return c.ID, len(fp) == 1
		case "image":
			return c.Image, len(fp) == 1 && c.Image != ""
		case "runtime":
			if len(fp) == 2 && fp[1] == "name" {
				return c.Runtime.Name, c.Runtime.Name != ""
			}
		case "snapshotter":
			return c.Snapshotter, len(fp) == 1 && c.Snapshotter != ""
		case "snapshotkey":
			return c.SnapshotKey, len(fp) == 1 && c.SnapshotKey != ""
		case "sandboxid":
			return c.SandboxID, len(fp) == 1 && c.SandboxID != ""
		case "labels":
			return labelField(c.Labels, fp[1:])
		}
		return "", false
	})
}

// labelField looks a label up by the rest of a field path; an unquoted
// dotted key arrives split, so the parts are joined back.
func labelField(labels map[string]string, rest []string) (string, bool) {
	if len(rest) == 0 {
		return "", false
	}
	v, ok := labels[strings.Join(rest, ".")]
	return v, ok
}

func validateContainer(c *Container) error {
	if err := identifiers.Validate(c.ID); err != nil {
		return fmt.Errorf("container id: %w", err)
	}
	if err := validateLabels(c.Labels); err != nil {
		return err
	}
	if c.Runtime.Name == "" {
		return fmt.Errorf("runtime name must be set: %w", errdefs.ErrInvalidArgument)
	}
	if c.Spec == nil {
		return fmt.Errorf("spec must be set: %w", errdefs.ErrInvalidArgument)
	}
	if c.SnapshotKey != "" && c.Snapshotter == "" {
		return fmt.Errorf("snapshotter must be set when snapshot key %q is: %w", c.SnapshotKey, errdefs.ErrInvalidArgument)
	}
	for name := range c.Extensions {
		if name == "" {
			return fmt.Errorf("extension name must not be empty: %w", errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

// Create records c and returns it with its timestamps set; AlreadyExists
// if the ID is taken.
func (s *ContainerStore) Create(ctx context.Context, c Container) (Container, error) {
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return Container{}, err
	}
	if err := validateContainer(&c); err != nil {
		return Container{}, containerErr(c.ID, ns, err)
	}
	err = s.db.update(ctx, func(tx *bolt.Tx) error {
		parent, err := createNSBucket(tx, ns, bucketContainers)
		if err != nil {
			return err
		}
		// The check and the write share the transaction, and bbolt runs one
		// writer at a time: of concurrent creates exactly one wins.
		if parent.Bucket([]byte(c.ID)) != nil {
			return containerErr(c.ID, ns, errdefs.ErrAlreadyExists)
		}
		b, err := parent.CreateBucket([]byte(c.ID))
		if err != nil {
			return containerErr(c.ID, ns, err)
		}
		c.CreatedAt = time.Now().UTC()
		c.UpdatedAt = c.CreatedAt
		return writeContainer(b, &c)
	})
	if err != nil {
		return Container{}, err
	}
	return c, nil
}

// Update changes the fields of container c.ID named by fieldpaths (labels,
// labels.KEY, spec, image, snapshotkey, extensions, extensions.KEY); none
// replaces every mutable field. ID, runtime, snapshotter, sandbox and the
// timestamps cannot change.
func (s *ContainerStore) Update(ctx context.Context, c Container, fieldpaths ...string) (Container, error) {
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return Container{}, err
	}
	if c.ID == "" {
		return Container{}, fmt.Errorf("container id must not be empty: %w", errdefs.ErrInvalidArgument)
	}
	var updated Container
	err = s.db.update(ctx, func(tx *bolt.Tx) error {
		b := nsBucket(tx, ns, bucketContainers, []byte(c.ID))
		if b == nil {
			return containerErr(c.ID, ns, errdefs.ErrNotFound)
		}
		old, err := readContainer(c.ID, b)
		if err != nil {
			return containerErr(c.ID, ns, err)
		}
		if updated, err = applyContainerUpdate(old, c, fieldpaths); err != nil {
			return containerErr(c.ID, ns, err)
		}
		if err := validateContainer(&updated); err != nil {
			return containerErr(c.ID, ns, err)
		}
		updated.UpdatedAt = time.Now().UTC()
		return writeContainer(b, &updated)
	})
	if err != nil {
		return Container{}, err
	}
	return updated, nil
}

// immutableContainerFields are refused by name rather than as unknown.
var immutableContainerFields = map[string]bool{
	"id": true, "runtime": true, "runtime.name": true, "runtime.options": true,
	"snapshotter": true, "sandboxid": true, "sandbox": true, "createdat": true, "updatedat": true,
}

func applyContainerUpdate(old, c Container, fieldpaths []string) (Container, error) {
	if len(fieldpaths) == 0 {
		if c.Runtime.Name != old.Runtime.Name {
			return old, fmt.Errorf("runtime is immutable (%q, asked for %q): %w", old.Runtime.Name, c.Runtime.Name, errdefs.ErrInvalidArgument)
		}
		if c.Snapshotter != old.Snapshotter {
			return old, fmt.Errorf("snapshotter is immutable (%q, asked for %q): %w", old.Snapshotter, c.Snapshotter, errdefs.ErrInvalidArgument)
		}
		fieldpaths = []string{"labels", "spec", "extensions", "image", "snapshotkey"}
	}
	u := old
	u.Labels = copyMap(old.Labels)
	u.Extensions = copyAnyMap(old.Extensions)
	for _, path := range fieldpaths {
		switch {
		case strings.HasPrefix(path, "labels."):
			key := strings.TrimPrefix(path, "labels.")
			if v, ok := c.Labels[key]; ok && v != "" {
				if u.Labels == nil {
					u.Labels = map[string]string{}
				}
				u.Labels[key] = v
			} else {
				delete(u.Labels, key)
			}
		case strings.HasPrefix(path, "extensions."):
			key := strings.TrimPrefix(path, "extensions.")
			if v, ok := c.Extensions[key]; ok && v != nil {
				if u.Extensions == nil {
					u.Extensions = map[string]*anypb.Any{}
				}
				u.Extensions[key] = v
			} else {
				delete(u.Extensions, key)
			}
		case path == "labels":
			u.Labels = c.Labels
		case path == "extensions":
			u.Extensions = c.Extensions
		case path == "spec":
			u.Spec = c.Spec
		case path == "image":
			u.Image = c.Image
		case path == "snapshotkey":
			u.SnapshotKey = c.SnapshotKey
		case immutableContainerFields[path]:
			return old, fmt.Errorf("field %q is immutable: %w", path, errdefs.ErrInvalidArgument)
		default:
			return old, fmt.Errorf("cannot update unknown field %q: %w", path, errdefs.ErrInvalidArgument)
		}
	}
	return u, nil
}

// Delete removes container id; NotFound if it does not exist.
func (s *ContainerStore) Delete(ctx context.Context, id string) error {
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return err
	}
	return s.db.update(ctx, func(tx *bolt.Tx) error {
		b := nsBucket(tx, ns, bucketContainers)
		if b == nil || b.Bucket([]byte(id)) == nil {
			return containerErr(id, ns, errdefs.ErrNotFound)
		}
		return b.DeleteBucket([]byte(id))
	})
}

func writeContainer(b *bolt.Bucket, c *Container) error {
	if err := writeTime(b, keyCreatedAt, c.CreatedAt); err != nil {
		return err
	}
	if err := writeTime(b, keyUpdatedAt, c.UpdatedAt); err != nil {
		return err
	}
	if err := writeMap(b, bucketLabels, c.Labels); err != nil {
		return err
	}
	for _, kv := range []struct {
		k []byte
		v string
	}{
		{keyImage, c.Image}, {keySnapshotter, c.Snapshotter},
		{keySnapshotKey, c.SnapshotKey}, {keySandboxID, c.SandboxID},
	} {
		if err := putString(b, kv.k, kv.v); err != nil {
			return err
		}
	}
	if err := writeAny(b, keySpec, c.Spec); err != nil {
		return err
	}
	rb, err := b.CreateBucketIfNotExists(bucketRuntime)
	if err != nil {
		return err
	}
	if err := putString(rb, keyName, c.Runtime.Name); err != nil {
		return err
	}
	if err := writeAny(rb, keyOptions, c.Runtime.Options); err != nil {
		return err
	}
	if b.Bucket(bucketExtensions) != nil {
		if err := b.DeleteBucket(bucketExtensions); err != nil {
			return err
		}
	}
	if len(c.Extensions) > 0 {
		eb, err := b.CreateBucket(bucketExtensions)
		if err != nil {
			return err
		}
		for name, a := range c.Extensions {
			if err := writeAny(eb, []byte(name), a); err != nil {
				return err
			}
		}
	}
	return nil
}

// readContainer decodes the container bucket b in one pass of a cursor:
// a List reads every container, and a Get per key would search the
// bucket's page again for each of them.
func readContainer(id string, b *bolt.Bucket) (Container, error) {
	c := Container{ID: id}
	cur := b.Cursor()
	for k, v := cur.First(); k != nil; k, v = cur.Next() {
		var err error
		if v == nil { // a nested bucket
			switch {
			case bytes.Equal(k, bucketLabels):
				c.Labels = readMap(b, bucketLabels)
			case bytes.Equal(k, bucketRuntime):
				err = readRuntime(b.Bucket(k), &c.Runtime)
			case bytes.Equal(k, bucketExtensions):
				c.Extensions, err = readExtensions(b.Bucket(k))
			}
		} else {
			switch {
			case bytes.Equal(k, keyImage):
				c.Image = string(v)
			case bytes.Equal(k, keySpec):
				if c.Spec, err = readAny(v); err != nil {
					err = fmt.Errorf("spec: %w", err)
				}
			case bytes.Equal(k, keySnapshotter):
				c.Snapshotter = string(v)
			case bytes.Equal(k, keySnapshotKey):
				c.SnapshotKey = string(v)
			case bytes.Equal(k, keySandboxID):
				c.SandboxID = string(v)
			case bytes.Equal(k, keyCreatedAt):
				err = decodeTime(k, v, &c.CreatedAt)
			case bytes.Equal(k, keyUpdatedAt):
				err = decodeTime(k, v, &c.UpdatedAt)
			}
		}
		if err != nil {
			return c, err
		}
	}
	return c, nil
}

func readRuntime(rb *bolt.Bucket, r *RuntimeInfo) error {
	var err error
	cur := rb.Cursor()
	for k, v := cur.First(); k != nil; k, v = cur.Next() {
		switch {
		case v == nil:
		case bytes.Equal(k, keyName):
			r.Name = string(v)
		case bytes.Equal(k, keyOptions):
			if r.Options, err = readAny(v); err != nil {
				return fmt.Errorf("runtime options: %w", err)
			}
		}
	}
	return nil
}

func readExtensions(eb *bolt.Bucket) (map[string]*anypb.Any, error) {
	exts := map[string]*anypb.Any{}
	err := eb.ForEach(func(k, v []byte) error {
		a, err := readAny(v)
		if err != nil {
			return fmt.Errorf("extension %q: %w", k, err)
		}
		exts[string(k)] = a
		return nil
	})
	return exts, err
}

// decodeTime is readTime for a value already in hand.
func decodeTime(key, v []byte, t *time.Time) error {
	if err := t.UnmarshalBinary(v); err != nil {
		return fmt.Errorf("corrupt %s: %v: %w", key, err, errdefs.ErrUnknown)
	}
	return nil
}

func copyMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func copyAnyMap(m map[string]*anypb.Any) map[string]*anypb.Any {
	if m == nil {
		return nil
	}
	out := make(map[string]*anypb.Any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
