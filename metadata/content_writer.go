package metadata

import (
	"context"
	"fmt"
	"time"

	"github.com/berth-containers/berth/content"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/leases"
	"github.com/berth-containers/berth/pkg/namespaces"
	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

// Writer opens (or resumes) this namespace's ingest named by the ref. With
// a lease on the context, the ingest and then the committed blob are added
// to the lease.
func (cs *contentStore) Writer(ctx context.Context, opts ...content.WriterOpt) (content.Writer, error) {
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return nil, err
	}
	var wo content.WriterOpts
	for _, o := range opts {
		if err := o(&wo); err != nil {
			return nil, err
		}
	}
	if wo.Ref == "" {
		return nil, fmt.Errorf("ingest ref must not be empty: %w", errdefs.ErrInvalidArgument)
	}
	lease, leased := leases.FromContext(ctx)
	exists := false
	err = cs.db.view(ctx, func(tx *bolt.Tx) error {
		if leased && nsBucket(tx, ns, bucketLeases, []byte(lease)) == nil {
			return leaseErr(lease, ns, errdefs.ErrNotFound)
		}
		exists = wo.Desc.Digest != "" && nsBucket(tx, ns, bucketContent, bucketBlob, []byte(wo.Desc.Digest)) != nil
		return nil
	})
	if err != nil {
		return nil, err
	}
	if exists {
		// The caller will use the blob it did not have to write: under a
		// lease, the lease holds it from here on. Otherwise a blob that
		// nothing references yet (left by an earlier, interrupted pull)
		// could be collected between this answer and the image record
		// that comes to reference it.
		if leased {
			if err := cs.db.update(ctx, func(tx *bolt.Tx) error {
				exists = false
				if nsBucket(tx, ns, bucketContent, bucketBlob, []byte(wo.Desc.Digest)) == nil {
					return nil // collected meanwhile: write it after all
				}
				exists = true
				return addLeaseResource(tx, ns, lease, [][]byte{bucketContent}, []byte(wo.Desc.Digest))
			}); err != nil {
				return nil, err
			}
		}
		if exists {
			return nil, blobErr(wo.Desc.Digest, ns, errdefs.ErrAlreadyExists)
		}
	}

	bref := backendRef(ns, wo.Ref)
	bw, err := cs.backend.Writer(ctx, content.WithRef(bref), content.WithDescriptor(wo.Desc))
	if errdefs.IsAlreadyExists(err) {
		// Another namespace has the blob. This one must still send the
		// bytes to see it, so ingest without the digest; Commit checks it.
		desc := wo.Desc
		desc.Digest = ""
		bw, err = cs.backend.Writer(ctx, content.WithRef(bref), content.WithDescriptor(desc))
	}
	if err != nil {
		return nil, ingestErr(wo.Ref, ns, err)
	}
	err = cs.db.update(ctx, func(tx *bolt.Tx) error {
		b, err := createNSBucket(tx, ns, bucketContent, bucketIngest, []byte(wo.Ref))
		if err != nil {
			return err
		}
		if err := b.Put(keyRef, []byte(bref)); err != nil {
			return err
		}
		if err := putString(b, keyExpected, string(wo.Desc.Digest)); err != nil {
			return err
		}
		if leased {
			return addLeaseResource(tx, ns, lease, [][]byte{bucketIngests}, []byte(wo.Ref))
		}
		return nil
	})
	if err != nil {
		bw.Close()
		return nil, ingestErr(wo.Ref, ns, err)
	}
	return &namespacedWriter{Writer: bw, cs: cs, ns: ns, ref: wo.Ref, bref: bref, expected: wo.Desc.Digest, lease: lease}, nil
}

// namespacedWriter records the blob in its namespace on commit.
type namespacedWriter struct {
	content.Writer
	cs       *contentStore
	ns       string
	ref      string
	bref     string
	expected digest.Digest
	lease    string // empty for none
}

func (w *namespacedWriter) Status() (content.Status, error) {
	st, err := w.Writer.Status()
	st.Ref = w.ref
	return st, err
}

// Commit verifies and commits the bytes in the backend, then makes the blob
// visible in this namespace with the labels from opts. When the backend
// already holds the blob its commit still verified these bytes first, so
// the namespace has proved it has the content.
func (w *namespacedWriter) Commit(ctx context.Context, size int64, expected digest.Digest, opts ...content.Opt) error {
	var info content.Info
	for _, o := range opts {
		if err := o(&info); err != nil {
			return ingestErr(w.ref, w.ns, err)
		}
	}
	if err := validateLabels(info.Labels); err != nil {
		return ingestErr(w.ref, w.ns, err)
	}
	if expected == "" {
		expected = w.expected
	}
	dgst := expected
	if dgst == "" {
		dgst = w.Writer.Digest()
	}

	// Hold off garbage collection between the backend commit and the
	// record that makes the blob reachable.
	w.cs.db.wlock.RLock()
	defer w.cs.db.wlock.RUnlock()

	err := w.Writer.Commit(ctx, size, expected)
	if err != nil && !errdefs.IsAlreadyExists(err) {
		w.forgetIfGone(ctx)
		return ingestErr(w.ref, w.ns, err)
	}
	binfo, err := w.cs.backend.Info(ctx, dgst)
	if err != nil {
		return blobErr(dgst, w.ns, err)
	}
	// A cancelled request must not leave the backend blob unrecorded.
	return w.cs.db.update(context.WithoutCancel(ctx), func(tx *bolt.Tx) error {
		if ib := nsBucket(tx, w.ns, bucketContent, bucketIngest); ib != nil && ib.Bucket([]byte(w.ref)) != nil {
			if err := ib.DeleteBucket([]byte(w.ref)); err != nil {
				return err
			}
		}
		if w.lease != "" {
			if lb := nsBucket(tx, w.ns, bucketLeases, []byte(w.lease)); lb != nil {
				if ib := lb.Bucket(bucketIngests); ib != nil {
					if err := ib.Delete([]byte(w.ref)); err != nil {
						return err
					}
				}
			}
			if err := addLeaseResource(tx, w.ns, w.lease, [][]byte{bucketContent}, []byte(dgst)); err != nil {
				return err
			}
		}
		blobs, err := createNSBucket(tx, w.ns, bucketContent, bucketBlob)
		if err != nil {
			return err
		}
		if blobs.Bucket([]byte(dgst)) != nil {
			return blobErr(dgst, w.ns, errdefs.ErrAlreadyExists)
		}
		b, err := blobs.CreateBucket([]byte(dgst))
		if err != nil {
			return err
		}
		now := time.Now().UTC()
		if err := writeUint(b, keySize, uint64(binfo.Size)); err != nil {
			return err
		}
		if err := writeTime(b, keyCreatedAt, now); err != nil {
			return err
		}
		if err := writeTime(b, keyUpdatedAt, now); err != nil {
			return err
		}
		return writeMap(b, bucketLabels, info.Labels)
	})
}

// forgetIfGone drops the ingest record when a failed commit discarded the
// backend ingest (the local store does so on a size or digest mismatch).
func (w *namespacedWriter) forgetIfGone(ctx context.Context) {
	if _, err := w.cs.backend.Status(ctx, w.bref); !errdefs.IsNotFound(err) {
		return
	}
	_ = w.cs.db.update(context.WithoutCancel(ctx), func(tx *bolt.Tx) error {
		if ib := nsBucket(tx, w.ns, bucketContent, bucketIngest); ib != nil && ib.Bucket([]byte(w.ref)) != nil {
			return ib.DeleteBucket([]byte(w.ref))
		}
		return nil
	})
}
