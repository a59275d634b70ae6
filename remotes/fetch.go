package remotes

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/berth-containers/berth/content"
	"github.com/berth-containers/berth/images"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/log"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// IngestStore is what FetchBlob writes to: ingests, and labels on blobs
// that are already there.
type IngestStore interface {
	content.Ingester
	content.Manager
}

// FetchConfig configures FetchBlob.
type FetchConfig struct {
	// Ref is the ingest ref; RefKey(desc) when empty.
	Ref string
	// SourceHost and SourceRepo, when set, are recorded in the blob's
	// LabelDistributionSource+SourceHost label.
	SourceHost, SourceRepo string
	// Labels are set on the blob when it is committed (or found).
	Labels map[string]string
	// Progress receives the blob's progress.
	Progress ProgressFunc
	// LockWait bounds how long to wait while another writer holds the
	// ingest (another pull of the same blob); 0 means 10 minutes.
	LockWait time.Duration
}

// FetchOpt sets FetchConfig fields.
type FetchOpt func(*FetchConfig)

// WithIngestRef names the ingest.
func WithIngestRef(ref string) FetchOpt { return func(c *FetchConfig) { c.Ref = ref } }

// WithSource records where the blob came from.
func WithSource(host, repo string) FetchOpt {
	return func(c *FetchConfig) { c.SourceHost, c.SourceRepo = host, repo }
}

// WithBlobLabels sets labels on the blob.
func WithBlobLabels(labels map[string]string) FetchOpt {
	return func(c *FetchConfig) {
		if c.Labels == nil {
			c.Labels = map[string]string{}
		}
		for k, v := range labels {
			c.Labels[k] = v
		}
	}
}

// WithFetchProgress reports progress to fn.
func WithFetchProgress(fn ProgressFunc) FetchOpt { return func(c *FetchConfig) { c.Progress = fn } }

// copyBufferSize is how much is sent to the ingest at once: content
// stores behind gRPC pay per message.
const copyBufferSize = 1 << 20

// FetchBlob makes sure desc's blob is in store: if it is, its labels are
// brought up to date; otherwise it is downloaded through the ingest
// cfg.Ref. An ingest left by an interrupted fetch is continued from its
// offset when fetcher is a RangeFetcher. The store verifies size and
// digest on commit; a resumed ingest that fails that check is fetched
// again from the start, once.
func FetchBlob(ctx context.Context, store IngestStore, fetcher Fetcher, desc ocispec.Descriptor, opts ...FetchOpt) error {
	var cfg FetchConfig
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.Ref == "" {
		cfg.Ref = RefKey(desc)
	}
	if err := images.ValidateDescriptor(desc); err != nil {
		return fmt.Errorf("fetch %s: %w", desc.Digest, err)
	}
	start := time.Now()
	report := func(st Status, off int64, err error) {
		cfg.Progress.Report(Progress{Ref: cfg.Ref, Desc: desc, Status: st, Offset: off, Total: desc.Size, StartedAt: start, Err: err})
	}
	err := fetchBlob(ctx, store, fetcher, desc, &cfg, report)
	if errdefs.IsAlreadyExists(err) {
		if err := updateLabels(ctx, store, desc, &cfg); err != nil {
			report(StatusError, 0, err)
			return err
		}
		report(StatusExists, desc.Size, nil)
		return nil
	}
	if err != nil {
		err = fmt.Errorf("fetch %s: %w", images.Describe(desc), err)
		report(StatusError, 0, err)
		return err
	}
	report(StatusDone, desc.Size, nil)
	return nil
}

func fetchBlob(ctx context.Context, store IngestStore, fetcher Fetcher, desc ocispec.Descriptor, cfg *FetchConfig, report func(Status, int64, error)) error {
	labels := map[string]string{}
	for k, v := range cfg.Labels {
		labels[k] = v
	}
	if cfg.SourceHost != "" && cfg.SourceRepo != "" {
		labels[LabelDistributionSource+cfg.SourceHost] = cfg.SourceRepo
	}
	for attempt := 0; ; attempt++ {
		offset, err := fetchOnce(ctx, store, fetcher, desc, cfg, labels, attempt > 0, report)
		if err == nil || errdefs.IsAlreadyExists(err) {
			return err
		}
		if offset > 0 && attempt == 0 && errdefs.IsFailedPrecondition(err) {
			// The bytes kept from last time were not the blob's: start over.
			log.G(ctx).WithError(err).WithField("ref", cfg.Ref).Warn("resumed ingest failed verification; fetching again from the start")
			continue
		}
		return err
	}
}

// fetchOnce downloads into the ingest (from its offset unless fromStart)
// and commits; it returns the offset it started from.
func fetchOnce(ctx context.Context, store IngestStore, fetcher Fetcher, desc ocispec.Descriptor, cfg *FetchConfig, labels map[string]string, fromStart bool, report func(Status, int64, error)) (int64, error) {
	w, err := openWriter(ctx, store, desc, cfg)
	if err != nil {
		return 0, err
	}
	defer w.Close()
	st, err := w.Status()
	if err != nil {
		return 0, fmt.Errorf("ingest %q status: %w", cfg.Ref, err)
	}
	offset := st.Offset
	if offset > desc.Size || fromStart {
		offset = 0
	}
	if offset > 0 && offset < desc.Size {
		if _, ok := fetcher.(RangeFetcher); !ok {
			offset = 0
		}
	}
	if offset != st.Offset {
		if err := w.Truncate(offset); err != nil {
			return 0, fmt.Errorf("ingest %q: truncate to %d: %w", cfg.Ref, offset, err)
		}
	}
	if offset > 0 {
		log.G(ctx).WithField("ref", cfg.Ref).WithField("offset", offset).Debug("resuming fetch")
	}
	if offset < desc.Size {
		if err := download(ctx, w, fetcher, desc, offset, report); err != nil {
			return offset, err
		}
	}
	report(StatusCommitting, desc.Size, nil)
	err = w.Commit(ctx, desc.Size, desc.Digest, content.WithLabels(labels))
	if err != nil && !errdefs.IsAlreadyExists(err) {
		return offset, fmt.Errorf("commit: %w", err)
	}
	return offset, err
}

// download appends desc's bytes from offset on to w.
func download(ctx context.Context, w content.Writer, fetcher Fetcher, desc ocispec.Descriptor, offset int64, report func(Status, int64, error)) error {
	var (
		rc  io.ReadCloser
		err error
	)
	if offset > 0 {
		rc, err = fetcher.(RangeFetcher).FetchFrom(ctx, desc, offset)
	} else {
		rc, err = fetcher.Fetch(ctx, desc)
	}
	if err != nil {
		return err
	}
	defer rc.Close()
	report(StatusDownloading, offset, nil)
	pw := &progressWriter{w: w, off: offset, report: report}
	bw := bufio.NewWriterSize(pw, copyBufferSize)
	if _, err := io.Copy(bw, rc); err != nil {
		// Keep what did arrive, so the next try continues from there.
		if ferr := bw.Flush(); ferr != nil {
			log.G(ctx).WithError(ferr).Debug("keep partial download")
		}
		var we *writeError
		if errors.As(err, &we) {
			return fmt.Errorf("write ingest: %w", we.err)
		}
		return err
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write ingest: %w", err)
	}
	return nil
}

type writeError struct{ err error }

func (e *writeError) Error() string { return e.err.Error() }

type progressWriter struct {
	w      io.Writer
	off    int64
	report func(Status, int64, error)
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.off += int64(n)
	p.report(StatusDownloading, p.off, nil)
	if err != nil {
		return n, &writeError{err}
	}
	return n, nil
}

// openWriter opens the ingest, waiting while another writer holds it.
func openWriter(ctx context.Context, store IngestStore, desc ocispec.Descriptor, cfg *FetchConfig) (content.Writer, error) {
	wait := cfg.LockWait
	if wait <= 0 {
		wait = 10 * time.Minute
	}
	deadline := time.Now().Add(wait)
	backoff := 50 * time.Millisecond
	for {
		w, err := store.Writer(ctx, content.WithRef(cfg.Ref), content.WithDescriptor(desc))
		if err == nil {
			return w, nil
		}
		if !errdefs.IsUnavailable(err) || time.Now().After(deadline) {
			if errdefs.IsAlreadyExists(err) {
				return nil, err
			}
			return nil, fmt.Errorf("open ingest %q: %w", cfg.Ref, err)
		}
		// Another pull is writing this blob; it will commit it (then we
		// find it exists) or give up (then we take over).
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(backoff):
		}
		if backoff < time.Second {
			backoff *= 2
		}
	}
}

// updateLabels brings the labels of a blob that is already there up to
// date, adding this source to its distribution sources.
func updateLabels(ctx context.Context, store IngestStore, desc ocispec.Descriptor, cfg *FetchConfig) error {
	labels := map[string]string{}
	for k, v := range cfg.Labels {
		labels[k] = v
	}
	if cfg.SourceHost != "" && cfg.SourceRepo != "" {
		key := LabelDistributionSource + cfg.SourceHost
		info, err := store.Info(ctx, desc.Digest)
		if err != nil {
			return fmt.Errorf("fetch %s: info: %w", images.Describe(desc), err)
		}
		if v := AppendSource(info.Labels[key], cfg.SourceRepo); v != info.Labels[key] {
			labels[key] = v
		}
	}
	if len(labels) == 0 {
		return nil
	}
	fields := make([]string, 0, len(labels))
	for k := range labels {
		fields = append(fields, "labels."+k)
	}
	if _, err := store.Update(ctx, content.Info{Digest: desc.Digest, Labels: labels}, fields...); err != nil {
		return fmt.Errorf("fetch %s: update labels: %w", images.Describe(desc), err)
	}
	return nil
}
