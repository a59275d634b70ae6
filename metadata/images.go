package metadata

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/filters"
	"github.com/berth-containers/berth/pkg/namespaces"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"
)

// maxImageName bounds image names; they are bolt keys, not paths.
const maxImageName = 4096

// Image names a target descriptor (an index or manifest) in the content store.
type Image struct {
	Name      string
	Labels    map[string]string
	Target    ocispec.Descriptor
	CreatedAt time.Time
	UpdatedAt time.Time
}

// ImageStore keeps images in the context's namespace.
type ImageStore struct{ db *DB }

// NewImageStore returns the image store backed by db.
func NewImageStore(db *DB) *ImageStore { return &ImageStore{db: db} }

func imageErr(name, ns string, err error) error {
	return fmt.Errorf("image %q in namespace %q: %w", name, ns, err)
}

// validateImageName accepts any reference-like string: non-empty, valid
// UTF-8, no whitespace or control characters, at most 4096 bytes. Full
// reference grammar is the client's business; names like "import-2024"
// are legal in containerd too.
func validateImageName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("image name must not be empty: %w", errdefs.ErrInvalidArgument)
	case len(name) > maxImageName:
		return fmt.Errorf("image name longer than %d bytes: %w", maxImageName, errdefs.ErrInvalidArgument)
	case !utf8.ValidString(name):
		return fmt.Errorf("image name %q is not valid UTF-8: %w", name, errdefs.ErrInvalidArgument)
	}
	for _, r := range name {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return fmt.Errorf("image name %q contains whitespace or control characters: %w", name, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

func validateImage(img *Image) error {
	if err := validateImageName(img.Name); err != nil {
		return err
	}
	if err := validateLabels(img.Labels); err != nil {
		return err
	}
	if img.Target.MediaType == "" {
		return fmt.Errorf("target media type must be set: %w", errdefs.ErrInvalidArgument)
	}
	if err := img.Target.Digest.Validate(); err != nil {
		return fmt.Errorf("target digest %q: %v: %w", img.Target.Digest, err, errdefs.ErrInvalidArgument)
	}
	if img.Target.Size < 0 {
		return fmt.Errorf("target size %d is negative: %w", img.Target.Size, errdefs.ErrInvalidArgument)
	}
	return nil
}

// Get returns image name; NotFound if it does not exist.
func (s *ImageStore) Get(ctx context.Context, name string) (Image, error) {
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return Image{}, err
	}
	var img Image
	err = s.db.view(ctx, func(tx *bolt.Tx) error {
		b := nsBucket(tx, ns, bucketImages)
		if b == nil || name == "" || b.Bucket([]byte(name)) == nil {
			return imageErr(name, ns, errdefs.ErrNotFound)
		}
		if img, err = readImage(name, b.Bucket([]byte(name))); err != nil {
			return imageErr(name, ns, err)
		}
		return nil
	})
	return img, err
}

// List returns the images matching any of the filters (name, labels.KEY,
// target.digest, target.mediatype).
func (s *ImageStore) List(ctx context.Context, exprs ...string) ([]Image, error) {
	return listObjects(ctx, s.db, bucketImages, exprs, readImage, imageAdaptor, imageErr)
}

func imageAdaptor(img *Image) filters.Adaptor {
	return filters.AdapterFunc(func(fp []string) (string, bool) {
		if len(fp) == 0 {
			return "", false
		}
		switch fp[0] {
		case "name":
			return img.Name, len(fp) == 1
		case "labels":
			return labelField(img.Labels, fp[1:])
		case "target":
			if len(fp) == 2 {
				switch fp[1] {
				case "digest":
					return string(img.Target.Digest), img.Target.Digest != ""
				case "mediatype":
					return img.Target.MediaType, img.Target.MediaType != ""
				}
			}
		}
		return "", false
	})
}

// Create records img, setting its timestamps; AlreadyExists if the name is taken.
func (s *ImageStore) Create(ctx context.Context, img Image) (Image, error) {
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return Image{}, err
	}
	if err := validateImage(&img); err != nil {
		return Image{}, imageErr(img.Name, ns, err)
	}
	err = s.db.update(ctx, func(tx *bolt.Tx) error {
		parent, err := createNSBucket(tx, ns, bucketImages)
		if err != nil {
			return err
		}
		if parent.Bucket([]byte(img.Name)) != nil {
			return imageErr(img.Name, ns, errdefs.ErrAlreadyExists)
		}
		b, err := parent.CreateBucket([]byte(img.Name))
		if err != nil {
			return imageErr(img.Name, ns, err)
		}
		img.CreatedAt = time.Now().UTC()
		img.UpdatedAt = img.CreatedAt
		return writeImage(b, &img)
	})
	if err != nil {
		return Image{}, err
	}
	return img, nil
}

// Update changes the fields of image img.Name named by fieldpaths (labels,
// labels.KEY, target, annotations, annotations.KEY); none replaces labels
// and target. The name cannot change.
func (s *ImageStore) Update(ctx context.Context, img Image, fieldpaths ...string) (Image, error) {
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return Image{}, err
	}
	if err := validateImageName(img.Name); err != nil {
		return Image{}, imageErr(img.Name, ns, err)
	}
	var updated Image
	err = s.db.update(ctx, func(tx *bolt.Tx) error {
		b := nsBucket(tx, ns, bucketImages, []byte(img.Name))
		if b == nil {
			return imageErr(img.Name, ns, errdefs.ErrNotFound)
		}
		old, err := readImage(img.Name, b)
		if err != nil {
			return imageErr(img.Name, ns, err)
		}
		if updated, err = applyImageUpdate(old, img, fieldpaths); err != nil {
			return imageErr(img.Name, ns, err)
		}
		if err := validateImage(&updated); err != nil {
			return imageErr(img.Name, ns, err)
		}
		updated.UpdatedAt = time.Now().UTC()
		return writeImage(b, &updated)
	})
	if err != nil {
		return Image{}, err
	}
	return updated, nil
}

func applyImageUpdate(old, img Image, fieldpaths []string) (Image, error) {
	if len(fieldpaths) == 0 {
		fieldpaths = []string{"labels", "target"}
	}
	u := old
	u.Labels = copyMap(old.Labels)
	u.Target.Annotations = copyMap(old.Target.Annotations)
	setKey := func(m map[string]string, key string, from map[string]string) map[string]string {
		if v, ok := from[key]; ok && v != "" {
			if m == nil {
				m = map[string]string{}
			}
			m[key] = v
		} else {
			delete(m, key)
		}
		return m
	}
	for _, path := range fieldpaths {
		switch {
		case strings.HasPrefix(path, "labels."):
			u.Labels = setKey(u.Labels, strings.TrimPrefix(path, "labels."), img.Labels)
		case strings.HasPrefix(path, "annotations."):
			u.Target.Annotations = setKey(u.Target.Annotations, strings.TrimPrefix(path, "annotations."), img.Target.Annotations)
		case path == "labels":
			u.Labels = img.Labels
		case path == "target":
			u.Target = img.Target
		case path == "annotations":
			u.Target.Annotations = img.Target.Annotations
		case path == "name" || path == "createdat" || path == "updatedat":
			return old, fmt.Errorf("field %q is immutable: %w", path, errdefs.ErrInvalidArgument)
		default:
			return old, fmt.Errorf("cannot update unknown field %q: %w", path, errdefs.ErrInvalidArgument)
		}
	}
	return u, nil
}

// Delete removes image name; NotFound if it does not exist. The content it
// referenced goes at the next garbage collection unless something else
// holds it.
func (s *ImageStore) Delete(ctx context.Context, name string) error {
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return err
	}
	return s.db.update(ctx, func(tx *bolt.Tx) error {
		b := nsBucket(tx, ns, bucketImages)
		if b == nil || name == "" || b.Bucket([]byte(name)) == nil {
			return imageErr(name, ns, errdefs.ErrNotFound)
		}
		return b.DeleteBucket([]byte(name))
	})
}

func writeImage(b *bolt.Bucket, img *Image) error {
	if err := writeTime(b, keyCreatedAt, img.CreatedAt); err != nil {
		return err
	}
	if err := writeTime(b, keyUpdatedAt, img.UpdatedAt); err != nil {
		return err
	}
	if err := writeMap(b, bucketLabels, img.Labels); err != nil {
		return err
	}
	if b.Bucket(bucketTarget) != nil {
		if err := b.DeleteBucket(bucketTarget); err != nil {
			return err
		}
	}
	tb, err := b.CreateBucket(bucketTarget)
	if err != nil {
		return err
	}
	if err := tb.Put(keyDigest, []byte(img.Target.Digest)); err != nil {
		return err
	}
	if err := tb.Put(keyMediaType, []byte(img.Target.MediaType)); err != nil {
		return err
	}
	if err := writeUint(tb, keySize, uint64(img.Target.Size)); err != nil {
		return err
	}
	return writeMap(tb, bucketAnnotations, img.Target.Annotations)
}

func readImage(name string, b *bolt.Bucket) (Image, error) {
	img := Image{Name: name, Labels: readMap(b, bucketLabels)}
	var err error
	if img.CreatedAt, err = readTime(b, keyCreatedAt); err != nil {
		return img, err
	}
	if img.UpdatedAt, err = readTime(b, keyUpdatedAt); err != nil {
		return img, err
	}
	if tb := b.Bucket(bucketTarget); tb != nil {
		img.Target.Digest = digest.Digest(tb.Get(keyDigest))
		img.Target.MediaType = string(tb.Get(keyMediaType))
		size, err := readUint(tb, keySize)
		if err != nil {
			return img, err
		}
		img.Target.Size = int64(size)
		img.Target.Annotations = readMap(tb, bucketAnnotations)
	}
	return img, nil
}
