// Package compression detects, decompresses and compresses layer streams.
// Layers arrive as gzip, zstd or plain tar whatever their media type claims,
// so readers detect the format from the first bytes instead of trusting it.
package compression

import (
	"bufio"
	"bytes"
	stdgzip "compress/gzip"
	"fmt"
	"io"

	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Compression is a layer stream format.
type Compression int

const (
	// Uncompressed is a plain tar stream.
	Uncompressed Compression = iota
	// Gzip is RFC 1952 gzip.
	Gzip
	// Zstd is a Zstandard frame stream.
	Zstd
)

// String names the compression as media types spell their suffix.
func (c Compression) String() string {
	switch c {
	case Uncompressed:
		return "uncompressed"
	case Gzip:
		return "gzip"
	case Zstd:
		return "zstd"
	}
	return fmt.Sprintf("compression(%d)", int(c))
}

// Extension is the file name suffix for the compression ("" when none).
func (c Compression) Extension() string {
	switch c {
	case Gzip:
		return "gz"
	case Zstd:
		return "zst"
	}
	return ""
}

var (
	gzipMagic = []byte{0x1f, 0x8b, 0x08}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// magicLen is how many bytes DetectCompression needs to decide.
const magicLen = 4

// DetectCompression names the format of a stream from its first bytes.
// Anything that is neither gzip nor zstd is Uncompressed; the tar reader
// then refuses it if it is not a tar either.
func DetectCompression(header []byte) Compression {
	switch {
	case bytes.HasPrefix(header, gzipMagic):
		return Gzip
	case bytes.HasPrefix(header, zstdMagic):
		return Zstd
	}
	return Uncompressed
}

// zstdWindowMax bounds the zstd decoder's window so a hostile frame header
// cannot make it allocate gigabytes; 128 MiB is zstd's --long=27 limit, the
// largest window any common encoder uses by default.
const zstdWindowMax = 128 << 20

// DecompressStream detects the format of r and returns a reader of its
// decompressed bytes. Closing it releases the decoder, not r.
func DecompressStream(r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	header, err := br.Peek(magicLen)
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("detect compression: %w", err)
	}
	switch c := DetectCompression(header); c {
	case Gzip:
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("open gzip stream: %w", err)
		}
		return gz, nil
	case Zstd:
		zd, err := zstd.NewReader(br,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderMaxWindow(zstdWindowMax),
			zstd.WithDecoderLowmem(true))
		if err != nil {
			return nil, fmt.Errorf("open zstd stream: %w", err)
		}
		return zstdReadCloser{zd}, nil
	default:
		return io.NopCloser(br), nil
	}
}

// zstdReadCloser adapts zstd.Decoder, whose Close returns nothing.
type zstdReadCloser struct{ *zstd.Decoder }

func (z zstdReadCloser) Close() error {
	z.Decoder.Close()
	return nil
}

// CompressStream returns a writer that compresses into w. Close flushes the
// compressor's trailer but does not close w.
func CompressStream(w io.Writer, c Compression) (io.WriteCloser, error) {
	switch c {
	case Uncompressed:
		return nopWriteCloser{w}, nil
	case Gzip:
		// The standard library's compressor, not klauspost's (which reads
		// faster, above): it is containerd's, so a layer compressed here
		// (a diff, an imported docker layer) has the digest containerd
		// gives the same content.
		return stdgzip.NewWriter(w), nil
	case Zstd:
		zw, err := zstd.NewWriter(w, zstd.WithEncoderConcurrency(1))
		if err != nil {
			return nil, fmt.Errorf("open zstd writer: %w", err)
		}
		return zw, nil
	}
	return nil, fmt.Errorf("compress stream: %v: %w", c, errdefs.ErrNotImplemented)
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }
