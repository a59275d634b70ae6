package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/client"
	"github.com/berth-containers/berth/images"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/platforms"
	"github.com/berth-containers/berth/pkg/reference"
	"github.com/berth-containers/berth/remotes"
)

func init() {
	imagesCommand.Subcommands = append(imagesCommand.Subcommands, imagePullCommand, imageFetchCommand, imagePushCommand)
	// containerd's ctr has it as `content fetch`; the same command here.
	contentFetch := *imageFetchCommand
	contentCommand.Subcommands = append(contentCommand.Subcommands, &contentFetch)
}

var imagePullCommand = &cli.Command{
	Name:      "pull",
	Usage:     "pull an image from a remote",
	ArgsUsage: "[flags] <ref>",
	Description: `Fetch and prepare an image for use in berth.

After pulling an image, it should be ready to use the same reference in a run
command. As part of this process, we do the following:

1. Fetch all resources into berth.
2. Prepare the snapshot filesystem with the pulled resources.
3. Register metadata for the image.`,
	Flags: append(registryFlags(),
		snapshotterFlag,
		&cli.BoolFlag{Name: "all-platforms", Usage: "pull content and metadata from all platforms"},
		&cli.BoolFlag{Name: "all-metadata", Usage: "Pull metadata for all platforms"},
		&cli.IntFlag{Name: "max-concurrent-downloads", Usage: "Set the max concurrent downloads for each pull", Value: 3},
		&cli.StringSliceFlag{Name: "label", Usage: "labels to attach to the image"},
		&cli.BoolFlag{Name: "print-chainid", Usage: "Print the resulting image's chain ID"},
	),
	Action: func(c *cli.Context) error { return pullAction(c, true) },
}

var imageFetchCommand = &cli.Command{
	Name:      "fetch",
	Usage:     "fetch all content for an image into berth",
	ArgsUsage: "[flags] <remote>",
	Description: `Fetch an image into berth without unpacking it.

This command ensures that berth has all the necessary resources to build
an image's rootfs and convert the configuration to a runtime format.`,
	Flags: append(registryFlags(),
		&cli.BoolFlag{Name: "all-platforms", Usage: "pull content from all platforms"},
		&cli.BoolFlag{Name: "all-metadata", Usage: "Pull metadata for all platforms"},
		&cli.BoolFlag{Name: "metadata-only", Usage: "Pull all metadata including manifests and configs"},
		&cli.IntFlag{Name: "max-concurrent-downloads", Usage: "Set the max concurrent downloads for each pull", Value: 3},
		&cli.StringSliceFlag{Name: "label", Usage: "labels to attach to the image"},
	),
	Action: func(c *cli.Context) error { return pullAction(c, false) },
}

var imagePushCommand = &cli.Command{
	Name:      "push",
	Usage:     "push an image to a remote",
	ArgsUsage: "[flags] <remote> [<local>]",
	Description: `Push an image to a remote.

The image named <local> (default: <remote>) is pushed, with all its
platforms unless --platform says otherwise, and tagged <remote>.
With --manifest DIGEST, that manifest (or index, see --manifest-type) of
the content store is pushed instead of an image's target.
Non-distributable layers are skipped unless --allow-non-distributable-blobs.`,
	Flags: append(registryFlags(),
		&cli.StringFlag{Name: "manifest", Usage: "digest of manifest"},
		&cli.StringFlag{Name: "manifest-type", Usage: "media type of manifest digest", Value: images.MediaTypeDockerSchema2Manifest},
		&cli.BoolFlag{Name: "allow-non-distributable-blobs", Usage: "allow pushing blobs that are marked as non-distributable"},
		&cli.IntFlag{Name: "max-concurrent-uploaded-layers", Usage: "set the max concurrent uploaded layers for each push", Value: 3},
	),
	Action: pushAction,
}

// readPassword prompts on out and reads a line from in with echo off
// when in is a terminal; otherwise it reads one line.
func readPassword(in *os.File, out io.Writer) (string, error) {
	fd := int(in.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		line, err := bufio.NewReader(in).ReadString('\n')
		if err != nil && (err != io.EOF || line == "") {
			return "", fmt.Errorf("read password from standard input (not a terminal; give --user USER:PASSWORD): %w", err)
		}
		return strings.TrimRight(line, "\r\n"), nil
	}
	fmt.Fprint(out, "Password: ")
	noEcho := *old
	noEcho.Lflag &^= unix.ECHO
	noEcho.Lflag |= unix.ICANON | unix.ISIG
	noEcho.Iflag |= unix.ICRNL
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &noEcho); err != nil {
		return "", fmt.Errorf("turn terminal echo off: %w", err)
	}
	defer func() {
		unix.IoctlSetTermios(fd, unix.TCSETS, old)
		fmt.Fprintln(out)
	}()
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", fmt.Errorf("read password: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

func pullAction(c *cli.Context, unpack bool) error {
	ref := c.Args().First()
	if ref == "" || c.NArg() > 1 {
		return fmt.Errorf("please provide exactly one image reference to %s: %w", c.Command.Name, errdefs.ErrInvalidArgument)
	}
	opts, err := remoteOpts(c)
	if err != nil {
		return err
	}
	if c.Bool("all-platforms") {
		opts = append(opts, client.WithAllPlatforms())
	}
	switch {
	case c.Bool("metadata-only"):
		opts = append(opts, client.WithMetadataOnly())
	case c.Bool("all-metadata"):
		opts = append(opts, client.WithAllMetadata())
	}
	n := c.Int("max-concurrent-downloads")
	if n < 1 {
		return fmt.Errorf("--max-concurrent-downloads %d: must be at least 1: %w", n, errdefs.ErrInvalidArgument)
	}
	opts = append(opts, client.WithMaxConcurrentDownloads(n))
	if l := c.StringSlice("label"); len(l) > 0 {
		labels, err := parseLabels(l)
		if err != nil {
			return err
		}
		opts = append(opts, client.WithPullLabels(labels))
	}
	cl, err := client.New(c.String("address"), client.WithTimeout(c.Duration("connect-timeout")), client.WithDefaultNamespace(c.String("namespace")))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := signalContext(c)
	defer cancel()

	named, err := reference.ParseNormalized(ref)
	if err != nil {
		return err
	}
	table := newProgressTable(os.Stdout, "downloading")
	opts = append(opts, client.WithProgress(table.update))
	specs := c.StringSlice("platform")
	if unpack && !c.Bool("all-platforms") && len(specs) <= 1 {
		// One platform: unpack its layers while the rest download.
		spec := platforms.DefaultString()
		if len(specs) == 1 {
			spec = specs[0]
		}
		p, err := platforms.Parse(spec)
		if err != nil {
			return err
		}
		opts = append(opts, client.WithPlatformMatcher(platforms.Only(p)),
			client.WithPullUnpack(), client.WithPullSnapshotter(c.String("snapshotter")))
		start := time.Now()
		table.start()
		img, err := cl.Pull(ctx, named.String(), opts...)
		table.stop(err == nil || img != nil)
		if err != nil && img == nil {
			return registryError(c, err)
		}
		fmt.Printf("unpacking %s %s...\n", platforms.Format(p), img.Target().Digest)
		if err != nil {
			return err
		}
		if err := printChainID(ctx, c, img); err != nil {
			return err
		}
		fmt.Printf("done: %v\n", time.Since(start).Round(time.Millisecond))
		return nil
	}
	table.start()
	info, err := cl.Fetch(ctx, named.String(), opts...)
	table.stop(err == nil)
	if err != nil {
		return registryError(c, err)
	}
	if !unpack {
		return nil
	}
	// Unpack for each platform asked for, or this host's.
	if len(specs) == 0 {
		specs = []string{platforms.DefaultString()}
	}
	for _, s := range specs {
		p, err := platforms.Parse(s)
		if err != nil {
			return err
		}
		start := time.Now()
		fmt.Printf("unpacking %s %s...\n", platforms.Format(p), info.Target.Digest)
		img := client.NewImageWithPlatform(cl, info, platforms.Only(p))
		if err := img.Unpack(ctx, c.String("snapshotter")); err != nil {
			return err
		}
		if err := printChainID(ctx, c, img); err != nil {
			return err
		}
		fmt.Printf("done: %v\n", time.Since(start).Round(time.Millisecond))
	}
	return nil
}

func pushAction(c *cli.Context) error {
	ref := c.Args().First()
	if ref == "" || c.NArg() > 2 {
		return fmt.Errorf("please provide a remote image reference to push, and optionally the local image: %w", errdefs.ErrInvalidArgument)
	}
	local := ref
	if c.NArg() == 2 {
		local = c.Args().Get(1)
	}
	opts, err := remoteOpts(c)
	if err != nil {
		return err
	}
	n := c.Int("max-concurrent-uploaded-layers")
	if n < 1 {
		return fmt.Errorf("--max-concurrent-uploaded-layers %d: must be at least 1: %w", n, errdefs.ErrInvalidArgument)
	}
	opts = append(opts, client.WithMaxConcurrentUploads(n))
	named, err := reference.ParseNormalized(ref)
	if err != nil {
		return err
	}
	cl, err := client.New(c.String("address"), client.WithTimeout(c.Duration("connect-timeout")), client.WithDefaultNamespace(c.String("namespace")))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := signalContext(c)
	defer cancel()

	if c.Bool("allow-non-distributable-blobs") {
		opts = append(opts, client.WithNonDistributable())
	}
	var target ocispec.Descriptor
	if m := c.String("manifest"); m != "" {
		if target, err = manifestDescriptor(ctx, cl, m, c.String("manifest-type")); err != nil {
			return err
		}
	} else {
		img, err := localImage(ctx, cl, local)
		if err != nil {
			return err
		}
		target = img.Target
	}
	table := newProgressTable(os.Stdout, "uploading")
	opts = append(opts, client.WithProgress(table.update))
	table.start()
	err = cl.Push(ctx, named.String(), target, opts...)
	table.stop(err == nil)
	if err != nil {
		return registryError(c, err)
	}
	return nil
}

// manifestDescriptor describes the manifest or index dgst of the content
// store, of media type mt (push --manifest, --manifest-type).
func manifestDescriptor(ctx context.Context, cl *client.Client, dgst, mt string) (ocispec.Descriptor, error) {
	d, err := digest.Parse(dgst)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("invalid manifest digest %q: %v: %w", dgst, err, errdefs.ErrInvalidArgument)
	}
	if !images.IsManifestType(mt) && !images.IsIndexType(mt) {
		return ocispec.Descriptor{}, fmt.Errorf("--manifest-type %q is not a manifest or index media type: %w", mt, errdefs.ErrInvalidArgument)
	}
	info, err := cl.ContentStore().Info(ctx, d)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("manifest %s: %w", d, err)
	}
	return ocispec.Descriptor{MediaType: mt, Digest: d, Size: info.Size}, nil
}

// localImage finds the image record name as given, else as normalised
// ("busybox" is "docker.io/library/busybox:latest").
func localImage(ctx context.Context, cl *client.Client, name string) (client.ImageInfo, error) {
	img, err := cl.ImageService().Get(ctx, name)
	if err == nil || !errdefs.IsNotFound(err) {
		return img, err
	}
	if n, perr := reference.ParseNormalized(name); perr == nil && n.String() != name {
		if img, err2 := cl.ImageService().Get(ctx, n.String()); err2 == nil {
			return img, nil
		}
	}
	return client.ImageInfo{}, fmt.Errorf("image %q: not found: %w", name, errdefs.ErrNotFound)
}

// printChainID prints the unpacked image's chain ID if --print-chainid
// asks for it.
func printChainID(ctx context.Context, c *cli.Context, img *client.Image) error {
	if !c.Bool("print-chainid") {
		return nil
	}
	diffIDs, err := img.RootFS(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("image chain ID: %s\n", images.ChainID(diffIDs))
	return nil
}

// registryError adds a hint to errors a user can act on.
func registryError(c *cli.Context, err error) error {
	if client.IsUnauthorized(err) && c.String("user") == "" && c.String("refresh") == "" {
		return fmt.Errorf("%w (log in with --user USER[:PASSWORD])", err)
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("%w (what was downloaded is kept; run the command again to continue)", err)
	}
	return err
}

// progressTable shows a transfer's progress: on a terminal a table
// redrawn every 100ms, one row per blob, as containerd's ctr does;
// elsewhere one line per finished blob.
type progressTable struct {
	out  *os.File
	verb string
	tty  bool

	mu      sync.Mutex
	order   []string
	items   map[string]remotes.Progress
	printed map[string]bool
	begin   time.Time
	lines   int

	stopc chan struct{}
	done  chan struct{}
}

func newProgressTable(out *os.File, verb string) *progressTable {
	return &progressTable{
		out:     out,
		verb:    verb,
		tty:     isTerminal(out),
		items:   map[string]remotes.Progress{},
		printed: map[string]bool{},
		begin:   time.Now(),
	}
}

// update is the client's progress callback.
func (t *progressTable) update(p remotes.Progress) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.items[p.Ref]; !ok {
		t.order = append(t.order, p.Ref)
	}
	t.items[p.Ref] = p
	if !t.tty && !t.printed[p.Ref] {
		switch p.Status {
		case remotes.StatusDone, remotes.StatusExists, remotes.StatusResolved:
			// Errors are left to the command's error message.
			t.printed[p.Ref] = true
			fmt.Fprintln(t.out, plainLine(p))
		}
	}
}

func plainLine(p remotes.Progress) string {
	switch p.Status {
	case remotes.StatusResolved:
		return fmt.Sprintf("%s: resolved %s", p.Ref, p.Desc.Digest)
	}
	return fmt.Sprintf("%s: %s (%s)", p.Ref, p.Status, byteSize(p.Total))
}

func (t *progressTable) start() {
	if !t.tty {
		return
	}
	t.stopc, t.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(t.done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-t.stopc:
				t.draw()
				return
			case <-tick.C:
				t.draw()
			}
		}
	}()
}

// stop draws the final state (on a terminal) or, after a success, the
// summary line.
func (t *progressTable) stop(ok bool) {
	if t.tty {
		if t.stopc != nil {
			close(t.stopc)
			<-t.done
			t.stopc = nil
		}
		return
	}
	if ok {
		t.mu.Lock()
		defer t.mu.Unlock()
		fmt.Fprintln(t.out, t.summary())
	}
}

func (t *progressTable) summary() string {
	var total int64
	for _, p := range t.items {
		if p.Status != remotes.StatusResolved && p.Status != remotes.StatusResolving && p.Status != remotes.StatusExists {
			total += p.Offset
		}
	}
	elapsed := time.Since(t.begin)
	rate := byteSize(0)
	if s := elapsed.Seconds(); s > 0 {
		rate = byteSize(float64(total) / s)
	}
	return fmt.Sprintf("elapsed: %.1f s\ttotal: %s\t(%s/s)", elapsed.Seconds(), byteSize(total), rate)
}

const barWidth = 40

func bar(done, total int64) string {
	n := barWidth
	if total > 0 && done < total {
		n = int(float64(barWidth) * float64(done) / float64(total))
	}
	return "|" + strings.Repeat("+", n) + strings.Repeat("-", barWidth-n) + "|"
}

// row is one line of the table.
func (t *progressTable) row(p remotes.Progress) string {
	status := string(p.Status)
	switch p.Status {
	case remotes.StatusDone, remotes.StatusExists, remotes.StatusResolved:
		return fmt.Sprintf("%s:\t%s\t%s\t", p.Ref, status, bar(1, 1))
	case remotes.StatusResolving, remotes.StatusWaiting:
		return fmt.Sprintf("%s:\t%s\t%s\t", p.Ref, status, bar(0, 1))
	case remotes.StatusError:
		return fmt.Sprintf("%s:\t%s\t%s\t", p.Ref, status, bar(0, 1))
	}
	return fmt.Sprintf("%s:\t%s\t%s\t%s/%s", p.Ref, status, bar(p.Offset, p.Total), byteSize(p.Offset), byteSize(p.Total))
}

func (t *progressTable) draw() {
	t.mu.Lock()
	var b strings.Builder
	tw := ctrTabWriter(&b)
	for _, ref := range t.order {
		fmt.Fprintln(tw, t.row(t.items[ref]))
	}
	fmt.Fprintln(tw, t.summary())
	tw.Flush()
	t.mu.Unlock()

	width := 0
	if ws, err := unix.IoctlGetWinsize(int(t.out.Fd()), unix.TIOCGWINSZ); err == nil {
		width = int(ws.Col)
	}
	var frame strings.Builder
	if t.lines > 0 {
		fmt.Fprintf(&frame, "\x1b[%dF", t.lines) // back to the table's first line
	}
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	for _, l := range lines {
		if width > 1 && len(l) >= width {
			l = l[:width-1]
		}
		frame.WriteString(l)
		frame.WriteString("\x1b[K\n")
	}
	frame.WriteString("\x1b[J")
	t.lines = len(lines)
	io.WriteString(t.out, frame.String())
}
