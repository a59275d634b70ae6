package content

import (
	"errors"
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"google.golang.org/protobuf/types/known/timestamppb"

	api "github.com/berth-containers/berth/api/services/content/v1"
	"github.com/berth-containers/berth/content"
	"github.com/berth-containers/berth/pkg/errdefs"
)

// write runs one Write session. The first message names the ingest (ref)
// and may give its total size and expected digest; the writer is opened (or
// resumed) with them. Each message then does its action and is answered
// with the ingest's status:
//
//	STAT    nothing more
//	WRITE   writes data at offset: offset must be the ingest's current one,
//	        or smaller to rewrite from there (0 restarts the ingest)
//	COMMIT  writes data, then verifies total and digest and commits with
//	        the message's labels; the answer carries the blob's digest
//
// The session ends when the client closes its side; the ingest stays open
// for a later session to resume unless it was committed.
func (l *local) write(stream api.Content_WriteServer) error {
	ctx := stream.Context()
	req, err := stream.Recv()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		return err
	}
	ref := req.Ref
	if ref == "" {
		return fmt.Errorf("write content: first message must name the ingest ref: %w", errdefs.ErrInvalidArgument)
	}
	var (
		total    = req.Total
		expected digest.Digest
	)
	if req.Expected != "" {
		if expected, err = parseDigest(req.Expected); err != nil {
			return fmt.Errorf("write content ref %q: %w", ref, err)
		}
	}
	if total < 0 {
		return fmt.Errorf("write content ref %q: negative total %d: %w", ref, total, errdefs.ErrInvalidArgument)
	}
	w, err := l.Writer(ctx, content.WithRef(ref), content.WithDescriptor(ocispec.Descriptor{Size: total, Digest: expected}))
	if err != nil {
		return err
	}
	defer w.Close()

	for {
		if req.Ref != "" && req.Ref != ref {
			return fmt.Errorf("write content ref %q: message names ref %q: %w", ref, req.Ref, errdefs.ErrInvalidArgument)
		}
		if req.Total > 0 {
			total = req.Total
		}
		if req.Expected != "" {
			if expected, err = parseDigest(req.Expected); err != nil {
				return fmt.Errorf("write content ref %q: %w", ref, err)
			}
		}
		st, err := w.Status()
		if err != nil {
			return fmt.Errorf("write content ref %q: status: %w", ref, err)
		}
		resp := &api.WriteContentResponse{
			Action:    req.Action,
			StartedAt: timestamppb.New(st.StartedAt),
			UpdatedAt: timestamppb.New(st.UpdatedAt),
			Offset:    st.Offset,
			Total:     total,
		}
		if resp.Total == 0 {
			resp.Total = st.Total
		}
		switch req.Action {
		case api.WriteAction_STAT:
			// Every reply carries the digest of the bytes so far, as
			// containerd's does: its client keeps the last one and
			// reports it when a commit finds the blob already there.
			resp.Digest = w.Digest().String()
		case api.WriteAction_WRITE, api.WriteAction_COMMIT:
			off, err := writeAt(w, ref, st.Offset, req.Offset, req.Data)
			if err != nil {
				return err
			}
			resp.Offset = off
			resp.Digest = w.Digest().String()
			if req.Action == api.WriteAction_COMMIT {
				if err := w.Commit(ctx, total, expected, content.WithLabels(req.Labels)); err != nil {
					return err
				}
				resp.Digest = w.Digest().String()
				if expected != "" {
					resp.Digest = expected.String()
				}
			}
		default:
			return fmt.Errorf("write content ref %q: unknown action %v: %w", ref, req.Action, errdefs.ErrInvalidArgument)
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
		if req, err = stream.Recv(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// writeAt writes data at off into an ingest now at cur, returning the new
// offset. Writing behind cur truncates first (a client rewinding after a
// lost response, or restarting at 0); writing past it would leave a hole.
// A message with no data never truncates.
func writeAt(w content.Writer, ref string, cur, off int64, data []byte) (int64, error) {
	if len(data) == 0 {
		return cur, nil
	}
	switch {
	case off > cur:
		return cur, fmt.Errorf("write content ref %q: write at offset %d is past the ingest's offset %d: %w", ref, off, cur, errdefs.ErrInvalidArgument)
	case off < 0:
		return cur, fmt.Errorf("write content ref %q: negative offset %d: %w", ref, off, errdefs.ErrInvalidArgument)
	case off < cur:
		if err := w.Truncate(off); err != nil {
			return cur, fmt.Errorf("write content ref %q: truncate to %d: %w", ref, off, err)
		}
		cur = off
	}
	n, err := w.Write(data)
	cur += int64(n)
	if err != nil {
		return cur, fmt.Errorf("write content ref %q at %d: %w", ref, cur, err)
	}
	return cur, nil
}
