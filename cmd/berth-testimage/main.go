// Command berth-testimage writes a busybox image archive without a
// network, for tests and benchmarks:
//
//	berth-testimage -o busybox.tar
//	berth-testimage -o multi.tar --layers 3 --format docker
//	berth-testimage -o big.tar --size-mb 200 --random-layers 5
//
// The archive imports with `ctr images import` (and `docker load`).
package main

import (
	"bufio"
	"compress/gzip"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"

	"github.com/berth-containers/berth/images/testimage"
	"github.com/berth-containers/berth/pkg/platforms"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "berth-testimage:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("berth-testimage", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		out          = fs.String("o", "", "write the archive to `FILE` (\"-\" for standard output)")
		name         = fs.String("name", testimage.DefaultName, "image `reference`")
		layers       = fs.Int("layers", 1, "busybox layers: 1 base, 2 adds files, 3 deletes one by whiteout, more add files")
		sizeMB       = fs.Int64("size-mb", 0, "add this many `MB` of random data in extra layers")
		randomLayers = fs.Int("random-layers", 5, "number of layers the --size-mb data is split into")
		format       = fs.String("format", "oci", "archive `format`: oci or docker")
		busybox      = fs.String("busybox", testimage.DefaultBusybox, "static busybox binary to copy in")
		platform     = fs.String("platform", "", "image platform (default this host's)")
		uncompressed = fs.Bool("uncompressed", false, "write layers as plain tars instead of gzip")
		seed         = fs.Uint64("seed", 1, "seed for the random data")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("-o FILE is required")
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *sizeMB < 0 || *randomLayers < 1 {
		return fmt.Errorf("--size-mb must be >= 0 and --random-layers >= 1")
	}

	opts, err := testimage.Busybox(*busybox, *layers)
	if err != nil {
		return err
	}
	opts.Name = *name
	if opts.Format, err = testimage.ParseFormat(*format); err != nil {
		return err
	}
	if *platform != "" {
		p, err := platforms.Parse(*platform)
		if err != nil {
			return err
		}
		opts.Platform = &p
	}
	opts.Uncompressed = *uncompressed
	if *sizeMB > 0 {
		opts.Layers = append(opts.Layers, testimage.RandomLayers(*sizeMB<<20, *randomLayers, *seed)...)
		// Random data does not compress; spend no time trying.
		opts.GzipLevel = gzip.BestSpeed
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if *out == "-" {
		w := bufio.NewWriterSize(stdout, 1<<20)
		if _, err := testimage.Build(ctx, w, opts); err != nil {
			return err
		}
		return w.Flush()
	}

	// Write beside the target and rename, so a failed run leaves no
	// half-written archive under the requested name.
	dir := filepath.Dir(*out)
	tmp, err := os.CreateTemp(dir, ".berth-testimage-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	w := bufio.NewWriterSize(tmp, 1<<20)
	img, err := testimage.Build(ctx, w, opts)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = tmp.Close()
	} else {
		tmp.Close()
	}
	if err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), *out); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "%s: %s %s (%d layers, chain %s)\n", *out, img.Name, img.Manifest.Digest, len(img.Layers), img.ChainID)
	return nil
}
