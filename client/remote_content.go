package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	contentapi "github.com/berth-containers/berth/api/services/content/v1"
	"github.com/berth-containers/berth/content"
	"github.com/berth-containers/berth/pkg/errdefs"
)

// remoteContent is content.Store over the Content service.
type remoteContent struct {
	client contentapi.ContentClient
}

// NewRemoteContentStore returns a content store that calls the Content
// service on client's connection.
func NewRemoteContentStore(client contentapi.ContentClient) content.Store {
	return &remoteContent{client: client}
}

var _ content.Store = (*remoteContent)(nil)

// remoteChunk is the most a WRITE message carries and the least a read
// fetches: 1 MiB keeps messages well under gRPC's 4 MiB default while
// making round trips rare.
const remoteChunk = 1 << 20

func (r *remoteContent) Info(ctx context.Context, dgst digest.Digest) (content.Info, error) {
	resp, err := r.client.Info(ctx, &contentapi.InfoRequest{Digest: dgst.String()})
	if err != nil {
		return content.Info{}, errdefs.FromGRPC(err)
	}
	return contentInfoFromProto(resp.Info), nil
}

func (r *remoteContent) Update(ctx context.Context, info content.Info, fieldpaths ...string) (content.Info, error) {
	req := &contentapi.UpdateRequest{Info: &contentapi.Info{Digest: info.Digest.String(), Labels: info.Labels}}
	if len(fieldpaths) > 0 {
		req.UpdateMask = &fieldmaskpb.FieldMask{Paths: fieldpaths}
	}
	resp, err := r.client.Update(ctx, req)
	if err != nil {
		return content.Info{}, errdefs.FromGRPC(err)
	}
	return contentInfoFromProto(resp.Info), nil
}

func (r *remoteContent) Walk(ctx context.Context, fn content.WalkFunc, filters ...string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := r.client.List(ctx, &contentapi.ListContentRequest{Filters: filters})
	if err != nil {
		return errdefs.FromGRPC(err)
	}
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return errdefs.FromGRPC(err)
		}
		for _, info := range resp.Info {
			if err := fn(contentInfoFromProto(info)); err != nil {
				return err
			}
		}
	}
}

func (r *remoteContent) Delete(ctx context.Context, dgst digest.Digest) error {
	_, err := r.client.Delete(ctx, &contentapi.DeleteContentRequest{Digest: dgst.String()})
	return errdefs.FromGRPC(err)
}

// ReaderAt asks for the blob's size when desc does not give it, so a
// missing blob fails here rather than at the first read.
func (r *remoteContent) ReaderAt(ctx context.Context, desc ocispec.Descriptor) (content.ReaderAt, error) {
	size := desc.Size
	if size == 0 {
		info, err := r.Info(ctx, desc.Digest)
		if err != nil {
			return nil, err
		}
		size = info.Size
	}
	return &remoteReaderAt{ctx: ctx, client: r.client, dgst: desc.Digest, size: size}, nil
}

func (r *remoteContent) Status(ctx context.Context, ref string) (content.Status, error) {
	resp, err := r.client.Status(ctx, &contentapi.StatusRequest{Ref: ref})
	if err != nil {
		return content.Status{}, errdefs.FromGRPC(err)
	}
	return ingestStatusFromProto(resp.Status), nil
}

func (r *remoteContent) ListStatuses(ctx context.Context, filters ...string) ([]content.Status, error) {
	resp, err := r.client.ListStatuses(ctx, &contentapi.ListStatusesRequest{Filters: filters})
	if err != nil {
		return nil, errdefs.FromGRPC(err)
	}
	out := make([]content.Status, 0, len(resp.Statuses))
	for _, st := range resp.Statuses {
		out = append(out, ingestStatusFromProto(st))
	}
	return out, nil
}

func (r *remoteContent) Abort(ctx context.Context, ref string) error {
	_, err := r.client.Abort(ctx, &contentapi.AbortRequest{Ref: ref})
	return errdefs.FromGRPC(err)
}

// Writer opens a Write session for the ref and learns where the ingest
// stands: a resumed ingest continues at its offset.
func (r *remoteContent) Writer(ctx context.Context, opts ...content.WriterOpt) (content.Writer, error) {
	var wo content.WriterOpts
	for _, o := range opts {
		if err := o(&wo); err != nil {
			return nil, err
		}
	}
	if wo.Ref == "" {
		return nil, fmt.Errorf("ingest ref must not be empty: %w", errdefs.ErrInvalidArgument)
	}
	ctx, cancel := context.WithCancel(ctx)
	stream, err := r.client.Write(ctx)
	if err != nil {
		cancel()
		return nil, errdefs.FromGRPC(err)
	}
	w := &remoteWriter{stream: stream, cancel: cancel, ref: wo.Ref, expected: wo.Desc.Digest, total: wo.Desc.Size}
	resp, err := w.send(&contentapi.WriteContentRequest{
		Action: contentapi.WriteAction_STAT, Ref: wo.Ref, Total: wo.Desc.Size, Expected: wo.Desc.Digest.String(),
	})
	if err != nil {
		w.Close()
		return nil, err
	}
	w.offset = resp.Offset
	w.status = writeStatus(wo.Ref, resp)
	if w.offset == 0 {
		w.digester = digest.Canonical.Digester()
	}
	return w, nil
}

// remoteWriter is one Write session.
type remoteWriter struct {
	stream   contentapi.Content_WriteClient
	cancel   context.CancelFunc
	ref      string
	offset   int64
	total    int64
	expected digest.Digest
	status   content.Status
	// digester hashes what this session wrote when it started at 0;
	// a resumed ingest's digest is known only after commit.
	digester  digest.Digester
	committed digest.Digest
	pending   []byte // written but not yet sent
	closed    bool
	// inflight are WRITEs sent and not yet answered, oldest first: up to
	// writeAhead chunks go out before the first answer is read, so the
	// daemon writes one chunk to disk while the next is on its way. One
	// chunk at a time, a 200 MB pull waited for ~200 round trips. A
	// chunk's buffer is reused only once its answer is in (gRPC may hold
	// a sent message until then).
	inflight []sentChunk
	free     [][]byte
}

// sentChunk is a WRITE in flight: its buffer and the offset the daemon
// must report once it has written it.
type sentChunk struct {
	buf []byte
	end int64
}

// writeAhead is how many 1 MiB chunks may be in flight.
const writeAhead = 4

func (w *remoteWriter) send(req *contentapi.WriteContentRequest) (*contentapi.WriteContentResponse, error) {
	if w.closed {
		return nil, fmt.Errorf("ingest %q: writer closed: %w", w.ref, errdefs.ErrFailedPrecondition)
	}
	if err := w.stream.Send(req); err != nil {
		if !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("ingest %q: send: %w", w.ref, errdefs.FromGRPC(err))
		}
		// The server ended the stream; its reason comes with Recv.
	}
	resp, err := w.stream.Recv()
	if err != nil {
		return nil, errdefs.FromGRPC(err)
	}
	return resp, nil
}

func writeStatus(ref string, resp *contentapi.WriteContentResponse) content.Status {
	return content.Status{
		Ref: ref, Offset: resp.Offset, Total: resp.Total,
		StartedAt: resp.StartedAt.AsTime(), UpdatedAt: resp.UpdatedAt.AsTime(),
	}
}

// Write buffers p and sends it in chunks of remoteChunk, so io.Copy's
// small writes do not each cost a round trip. What is still buffered goes
// with the next Status, Truncate, Commit or Close.
func (w *remoteWriter) Write(p []byte) (int, error) {
	if w.closed {
		return 0, fmt.Errorf("ingest %q: writer closed: %w", w.ref, errdefs.ErrFailedPrecondition)
	}
	n := 0
	for len(p) > 0 {
		if w.pending == nil {
			if k := len(w.free); k > 0 {
				w.pending, w.free = w.free[k-1][:0], w.free[:k-1]
			} else {
				w.pending = make([]byte, 0, remoteChunk)
			}
		}
		k := copy(w.pending[len(w.pending):cap(w.pending)], p)
		w.pending = w.pending[:len(w.pending)+k]
		if w.digester != nil {
			w.digester.Hash().Write(p[:k])
		}
		n += k
		p = p[k:]
		if len(w.pending) == cap(w.pending) {
			if err := w.flush(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// flush sends the buffered bytes without waiting for the answer (see
// inflight); with writeAhead chunks in flight it first takes the oldest
// answer.
func (w *remoteWriter) flush() error {
	if len(w.pending) == 0 {
		return nil
	}
	if len(w.inflight) >= writeAhead {
		if err := w.recvWrite(); err != nil {
			return err
		}
	}
	if w.closed {
		return fmt.Errorf("ingest %q: writer closed: %w", w.ref, errdefs.ErrFailedPrecondition)
	}
	end := w.offset + int64(len(w.pending))
	if err := w.stream.Send(&contentapi.WriteContentRequest{Action: contentapi.WriteAction_WRITE, Offset: w.offset, Data: w.pending}); err != nil {
		if !errors.Is(err, io.EOF) {
			return fmt.Errorf("ingest %q: send: %w", w.ref, errdefs.FromGRPC(err))
		}
		// The server ended the stream; its reason comes with Recv.
		w.inflight = append(w.inflight, sentChunk{buf: w.pending, end: end})
		w.pending = nil
		return w.drain()
	}
	w.inflight = append(w.inflight, sentChunk{buf: w.pending, end: end})
	w.pending = nil
	w.offset = end
	return nil
}

// recvWrite takes the answer to the oldest WRITE in flight.
func (w *remoteWriter) recvWrite() error {
	c := w.inflight[0]
	resp, err := w.stream.Recv()
	if err != nil {
		w.inflight = nil
		return errdefs.FromGRPC(err)
	}
	w.inflight = w.inflight[1:]
	w.free = append(w.free, c.buf)
	if resp.Offset != c.end {
		return fmt.Errorf("ingest %q: wrote up to %d but the ingest is at %d: %w", w.ref, c.end, resp.Offset, errdefs.ErrFailedPrecondition)
	}
	w.status = writeStatus(w.ref, resp)
	return nil
}

// drain takes the answers to every WRITE in flight.
func (w *remoteWriter) drain() error {
	for len(w.inflight) > 0 {
		if err := w.recvWrite(); err != nil {
			return err
		}
	}
	return nil
}

// Digest is the digest of what was written: the committed blob's after
// Commit, else the hash of this session's bytes (empty for a resumed
// ingest, whose earlier bytes this session never saw).
func (w *remoteWriter) Digest() digest.Digest {
	if w.committed != "" {
		return w.committed
	}
	if w.digester != nil {
		return w.digester.Digest()
	}
	return ""
}

func (w *remoteWriter) Commit(ctx context.Context, size int64, expected digest.Digest, opts ...content.Opt) error {
	var info content.Info
	for _, o := range opts {
		if err := o(&info); err != nil {
			return err
		}
	}
	if expected == "" {
		expected = w.expected
	}
	if err := w.drain(); err != nil {
		return err
	}
	resp, err := w.send(&contentapi.WriteContentRequest{
		Action: contentapi.WriteAction_COMMIT, Offset: w.offset, Data: w.pending,
		Total: size, Expected: expected.String(), Labels: info.Labels,
	})
	if err != nil {
		return err
	}
	w.offset, w.pending = resp.Offset, w.pending[:0]
	if size > 0 && resp.Offset != size {
		return fmt.Errorf("ingest %q: committed %d bytes, expected %d: %w", w.ref, resp.Offset, size, errdefs.ErrFailedPrecondition)
	}
	if expected != "" && resp.Digest != expected.String() {
		return fmt.Errorf("ingest %q: committed digest %s, expected %s: %w", w.ref, resp.Digest, expected, errdefs.ErrFailedPrecondition)
	}
	w.committed = digest.Digest(resp.Digest)
	return nil
}

func (w *remoteWriter) Status() (content.Status, error) {
	if err := w.flush(); err != nil {
		return content.Status{}, err
	}
	if err := w.drain(); err != nil {
		return content.Status{}, err
	}
	resp, err := w.send(&contentapi.WriteContentRequest{Action: contentapi.WriteAction_STAT})
	if err != nil {
		return content.Status{}, err
	}
	w.status = writeStatus(w.ref, resp)
	w.status.Expected = w.expected
	return w.status, nil
}

// Truncate moves the write position back to size; the server truncates
// the ingest when the next data arrives there.
func (w *remoteWriter) Truncate(size int64) error {
	if err := w.flush(); err != nil {
		return err
	}
	if err := w.drain(); err != nil {
		return err
	}
	if size < 0 || size > w.offset {
		return fmt.Errorf("ingest %q: cannot truncate to %d at offset %d: %w", w.ref, size, w.offset, errdefs.ErrInvalidArgument)
	}
	w.offset = size
	if size == 0 {
		w.digester = digest.Canonical.Digester()
	} else {
		w.digester = nil
	}
	return nil
}

// Close ends the session; an uncommitted ingest stays for a later writer.
func (w *remoteWriter) Close() error {
	if w.closed {
		return nil
	}
	// Keep what was written for a later writer to resume.
	ferr := w.flush()
	if ferr == nil {
		ferr = w.drain()
	}
	w.closed = true
	w.stream.CloseSend()
	// Drain so the server sees the end of the session before we cancel.
	for {
		if _, err := w.stream.Recv(); err != nil {
			break
		}
	}
	w.cancel()
	return ferr
}

// remoteReaderAt reads a blob with Read calls, fetching at least a chunk
// at a time and keeping it, so small sequential reads cost few round trips.
type remoteReaderAt struct {
	ctx    context.Context
	client contentapi.ContentClient
	dgst   digest.Digest
	size   int64

	mu     sync.Mutex // ReadAt may be called concurrently
	buf    []byte     // bytes [bufOff, bufOff+len(buf)) of the blob
	bufOff int64
}

func (ra *remoteReaderAt) Size() int64 { return ra.size }
func (ra *remoteReaderAt) Close() error {
	ra.mu.Lock()
	ra.buf = nil
	ra.mu.Unlock()
	return nil
}

func (ra *remoteReaderAt) ReadAt(p []byte, off int64) (int, error) {
	ra.mu.Lock()
	defer ra.mu.Unlock()
	if off < 0 {
		return 0, fmt.Errorf("read content %s: negative offset %d: %w", ra.dgst, off, errdefs.ErrInvalidArgument)
	}
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		if pos >= ra.size {
			return n, io.EOF
		}
		if pos >= ra.bufOff && pos < ra.bufOff+int64(len(ra.buf)) {
			n += copy(p[n:], ra.buf[pos-ra.bufOff:])
			continue
		}
		want := int64(len(p) - n)
		if want < remoteChunk {
			want = remoteChunk
		}
		if err := ra.fetch(pos, want); err != nil {
			ra.buf = nil // possibly half overwritten
			return n, err
		}
	}
	return n, nil
}

// fetch reads size bytes at off into the buffer.
func (ra *remoteReaderAt) fetch(off, size int64) error {
	if off+size > ra.size {
		size = ra.size - off
	}
	stream, err := ra.client.Read(ra.ctx, &contentapi.ReadContentRequest{Digest: ra.dgst.String(), Offset: off, Size: size})
	if err != nil {
		return errdefs.FromGRPC(err)
	}
	buf := ra.buf[:0]
	if int64(cap(buf)) < size {
		buf = make([]byte, 0, size)
	}
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return errdefs.FromGRPC(err)
		}
		if resp.Offset != off+int64(len(buf)) || int64(len(buf)+len(resp.Data)) > size {
			return fmt.Errorf("read content %s: server sent data at %d, expected %d: %w", ra.dgst, resp.Offset, off+int64(len(buf)), errdefs.ErrFailedPrecondition)
		}
		buf = append(buf, resp.Data...)
	}
	if len(buf) == 0 {
		return fmt.Errorf("read content %s at %d: %w", ra.dgst, off, io.ErrUnexpectedEOF)
	}
	ra.buf, ra.bufOff = buf, off
	return nil
}

func contentInfoFromProto(p *contentapi.Info) content.Info {
	return content.Info{
		Digest:    digest.Digest(p.GetDigest()),
		Size:      p.GetSize(),
		CreatedAt: p.GetCreatedAt().AsTime(),
		UpdatedAt: p.GetUpdatedAt().AsTime(),
		Labels:    p.GetLabels(),
	}
}

func ingestStatusFromProto(p *contentapi.Status) content.Status {
	return content.Status{
		Ref:       p.GetRef(),
		Offset:    p.GetOffset(),
		Total:     p.GetTotal(),
		Expected:  digest.Digest(p.GetExpected()),
		StartedAt: p.GetStartedAt().AsTime(),
		UpdatedAt: p.GetUpdatedAt().AsTime(),
	}
}
