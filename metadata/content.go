package metadata

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/berth-containers/berth/content"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/filters"
	"github.com/berth-containers/berth/pkg/namespaces"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"
)

// contentStore gives each namespace its own view of one shared backend:
// a blob is stored once, but a namespace sees it only after writing it
// itself (proving it has the bytes), labels are per namespace, and ingest
// refs are per namespace (the backend ref is "<namespace>/<ref>").
type contentStore struct {
	db      *DB
	backend content.Store
}

// NewContentStore wraps backend with per-namespace views recorded in db and
// registers it with db for garbage collection. Call it once per DB.
func NewContentStore(db *DB, backend content.Store) content.Store {
	cs := &contentStore{db: db, backend: backend}
	db.mu.Lock()
	db.content = cs
	db.mu.Unlock()
	return cs
}

func blobErr(dgst digest.Digest, ns string, err error) error {
	return fmt.Errorf("content %s in namespace %q: %w", dgst, ns, err)
}

func ingestErr(ref, ns string, err error) error {
	return fmt.Errorf("ingest %q in namespace %q: %w", ref, ns, err)
}

// backendRef is unique across namespaces because namespaces hold no '/'.
func backendRef(ns, ref string) string { return ns + "/" + ref }

func (cs *contentStore) Info(ctx context.Context, dgst digest.Digest) (content.Info, error) {
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return content.Info{}, err
	}
	var info content.Info
	err = cs.db.view(ctx, func(tx *bolt.Tx) error {
		b := nsBucket(tx, ns, bucketContent, bucketBlob, []byte(dgst))
		if b == nil || dgst == "" {
			return blobErr(dgst, ns, errdefs.ErrNotFound)
		}
		info, err = readBlob(dgst, b)
		return err
	})
	return info, err
}

func readBlob(dgst digest.Digest, b *bolt.Bucket) (content.Info, error) {
	info := content.Info{Digest: dgst, Labels: readMap(b, bucketLabels)}
	size, err := readUint(b, keySize)
	if err != nil {
		return info, err
	}
	info.Size = int64(size)
	if info.CreatedAt, err = readTime(b, keyCreatedAt); err != nil {
		return info, err
	}
	info.UpdatedAt, err = readTime(b, keyUpdatedAt)
	return info, err
}

// Update changes a blob's labels in this namespace ("labels", "labels.KEY";
// none means "labels").
func (cs *contentStore) Update(ctx context.Context, info content.Info, fieldpaths ...string) (content.Info, error) {
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return content.Info{}, err
	}
	if len(fieldpaths) == 0 {
		fieldpaths = []string{"labels"}
	}
	var out content.Info
	err = cs.db.update(ctx, func(tx *bolt.Tx) error {
		b := nsBucket(tx, ns, bucketContent, bucketBlob, []byte(info.Digest))
		if b == nil || info.Digest == "" {
			return blobErr(info.Digest, ns, errdefs.ErrNotFound)
		}
		old, err := readBlob(info.Digest, b)
		if err != nil {
			return blobErr(info.Digest, ns, err)
		}
		labels := copyMap(old.Labels)
		for _, path := range fieldpaths {
			switch {
			case path == "labels":
				labels = copyMap(info.Labels)
			case strings.HasPrefix(path, "labels."):
				key := strings.TrimPrefix(path, "labels.")
				if v := info.Labels[key]; v != "" {
					if labels == nil {
						labels = map[string]string{}
					}
					labels[key] = v
				} else {
					delete(labels, key)
				}
			default:
				return blobErr(info.Digest, ns, fmt.Errorf("cannot update field %q: %w", path, errdefs.ErrInvalidArgument))
			}
		}
		if err := validateLabels(labels); err != nil {
			return blobErr(info.Digest, ns, err)
		}
		out = old
		out.Labels = labels
		out.UpdatedAt = time.Now().UTC()
		if err := writeMap(b, bucketLabels, labels); err != nil {
			return err
		}
		return writeTime(b, keyUpdatedAt, out.UpdatedAt)
	})
	return out, err
}

// Walk visits this namespace's blobs matching any filter (digest, size,
// labels.KEY). fn runs after the read transaction so it may call the store.
func (cs *contentStore) Walk(ctx context.Context, fn content.WalkFunc, exprs ...string) error {
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return err
	}
	f, err := filters.ParseAll(exprs...)
	if err != nil {
		return err
	}
	var infos []content.Info
	err = cs.db.view(ctx, func(tx *bolt.Tx) error {
		b := nsBucket(tx, ns, bucketContent, bucketBlob)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			if v != nil {
				return nil
			}
			info, err := readBlob(digest.Digest(k), b.Bucket(k))
			if err != nil {
				return blobErr(digest.Digest(k), ns, err)
			}
			if f.Match(contentAdaptor(&info)) {
				infos = append(infos, info)
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	for _, info := range infos {
		if err := fn(info); err != nil {
			return err
		}
	}
	return nil
}

func contentAdaptor(info *content.Info) filters.Adaptor {
	return filters.AdapterFunc(func(fp []string) (string, bool) {
		if len(fp) == 0 {
			return "", false
		}
		switch fp[0] {
		case "digest":
			return string(info.Digest), len(fp) == 1
		case "size":
			return strconv.FormatInt(info.Size, 10), len(fp) == 1
		case "labels":
			return labelField(info.Labels, fp[1:])
		}
		return "", false
	})
}

// Delete forgets the blob in this namespace; the backend copy goes at the
// next garbage collection once no namespace has it.
func (cs *contentStore) Delete(ctx context.Context, dgst digest.Digest) error {
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return err
	}
	return cs.db.update(ctx, func(tx *bolt.Tx) error {
		b := nsBucket(tx, ns, bucketContent, bucketBlob)
		if b == nil || dgst == "" || b.Bucket([]byte(dgst)) == nil {
			return blobErr(dgst, ns, errdefs.ErrNotFound)
		}
		return b.DeleteBucket([]byte(dgst))
	})
}

func (cs *contentStore) ReaderAt(ctx context.Context, desc ocispec.Descriptor) (content.ReaderAt, error) {
	if _, err := cs.Info(ctx, desc.Digest); err != nil {
		return nil, err
	}
	return cs.backend.ReaderAt(ctx, desc)
}

// ingestRecord returns this namespace's ingest bucket for ref, nil if none.
func ingestRecord(tx *bolt.Tx, ns, ref string) *bolt.Bucket {
	if ref == "" {
		return nil
	}
	return nsBucket(tx, ns, bucketContent, bucketIngest, []byte(ref))
}

func (cs *contentStore) Status(ctx context.Context, ref string) (content.Status, error) {
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return content.Status{}, err
	}
	var bref string
	err = cs.db.view(ctx, func(tx *bolt.Tx) error {
		b := ingestRecord(tx, ns, ref)
		if b == nil {
			return ingestErr(ref, ns, errdefs.ErrNotFound)
		}
		bref = string(b.Get(keyRef))
		return nil
	})
	if err != nil {
		return content.Status{}, err
	}
	st, err := cs.backend.Status(ctx, bref)
	if err != nil {
		return content.Status{}, ingestErr(ref, ns, err)
	}
	st.Ref = ref
	return st, nil
}

// ListStatuses lists this namespace's ingests matching any filter (ref).
func (cs *contentStore) ListStatuses(ctx context.Context, exprs ...string) ([]content.Status, error) {
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return nil, err
	}
	f, err := filters.ParseAll(exprs...)
	if err != nil {
		return nil, err
	}
	refs := map[string]string{}
	err = cs.db.view(ctx, func(tx *bolt.Tx) error {
		b := nsBucket(tx, ns, bucketContent, bucketIngest)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			if v == nil {
				refs[string(k)] = string(b.Bucket(k).Get(keyRef))
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	var out []content.Status
	for ref, bref := range refs {
		st, err := cs.backend.Status(ctx, bref)
		if errdefs.IsNotFound(err) {
			continue // committed or aborted meanwhile
		} else if err != nil {
			return nil, ingestErr(ref, ns, err)
		}
		st.Ref = ref
		match := f.Match(filters.AdapterFunc(func(fp []string) (string, bool) {
			if len(fp) == 1 && fp[0] == "ref" {
				return ref, true
			}
			if len(fp) == 1 && fp[0] == "expected" {
				return string(st.Expected), st.Expected != ""
			}
			return "", false
		}))
		if match {
			out = append(out, st)
		}
	}
	return out, nil
}

func (cs *contentStore) Abort(ctx context.Context, ref string) error {
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return err
	}
	return cs.db.update(ctx, func(tx *bolt.Tx) error {
		b := ingestRecord(tx, ns, ref)
		if b == nil {
			return ingestErr(ref, ns, errdefs.ErrNotFound)
		}
		if err := cs.backend.Abort(ctx, string(b.Get(keyRef))); err != nil && !errdefs.IsNotFound(err) {
			return ingestErr(ref, ns, err)
		}
		return nsBucket(tx, ns, bucketContent, bucketIngest).DeleteBucket([]byte(ref))
	})
}
