package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/client"
	"github.com/berth-containers/berth/content"
	"github.com/berth-containers/berth/images"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/reference"
	"github.com/berth-containers/berth/remotes"
)

func init() {
	contentCommand.Subcommands = append(contentCommand.Subcommands, contentFetchObjectCommand, contentPushObjectCommand)
}

// defaultObjectType is the media type of an object given without one.
const defaultObjectType = "application/octet-stream"

// contentFetchObjectCommand is containerd 1.6's `ctr content fetch-object`:
// it writes one object of a remote repository to standard output.
// containerd's resolves <remote> and writes its manifest (or index),
// whatever <object> says; ours does that without <object>, and with it
// writes the object of that digest (see openObject). The first hint, if
// any, is the object's media type.
var contentFetchObjectCommand = &cli.Command{
	Name:      "fetch-object",
	Usage:     "retrieve objects from a remote",
	ArgsUsage: "[flags] <remote> [<object> [<hint>, ...]]",
	Description: `Fetch objects by identifier from a remote.

Without <object>, the manifest or index <remote> names is written to
standard output. With <object> (a digest), that object of <remote>'s
repository is: a manifest, index, config or layer of the image <remote>
names; a blob the local content store holds (which tells its size); or a
manifest or index of the repository. The first <hint> is the object's
media type: a manifest or index type looks for a manifest only, another
type for a blob only.`,
	Flags:  objectRegistryFlags(),
	Action: fetchObjectAction,
}

// contentPushObjectCommand is containerd 1.6's `ctr content push-object`:
// it prints "Pushed <digest> <type>" as containerd's does. Where
// containerd's fails because the remote has the object already, ours
// says so and succeeds, as `ctr push` does for blobs that exist.
var contentPushObjectCommand = &cli.Command{
	Name:      "push-object",
	Usage:     "push an object to a remote",
	ArgsUsage: "[flags] <remote> <object> [<type>]",
	Description: `Push objects by identifier to a remote.

The blob <object> (a digest) of the local content store is pushed to the
repository of <remote> with media type <type> (default ` + defaultObjectType + `);
a manifest or index type puts it as a manifest by digest. Nothing is tagged.`,
	Flags:  objectRegistryFlags(),
	Action: pushObjectAction,
}

// objectRegistryFlags are pull's and push's registry flags, without
// --platform: one object has no platform to choose.
func objectRegistryFlags() []cli.Flag {
	var flags []cli.Flag
	for _, f := range registryFlags() {
		if f.Names()[0] != "platform" {
			flags = append(flags, f)
		}
	}
	return flags
}

// objectResolver is the resolver pull and push use, from the same flags.
func objectResolver(c *cli.Context) (remotes.Resolver, error) {
	opts, err := remoteOpts(c)
	if err != nil {
		return nil, err
	}
	var rc client.RemoteContext
	for _, o := range opts {
		if err := o(&rc); err != nil {
			return nil, err
		}
	}
	if rc.Resolver == nil {
		return nil, errors.New("no registry resolver configured")
	}
	return rc.Resolver, nil
}

// objectArgs validates <remote>, <object> and the optional media type.
// object is required unless optionalObject.
func objectArgs(c *cli.Context, optionalObject bool) (named reference.Named, dgst digest.Digest, mediaType string, err error) {
	if c.NArg() == 0 || (!optionalObject && c.NArg() < 2) {
		return nil, "", "", fmt.Errorf("usage: ctr content %s %s: %w", c.Command.Name, c.Command.ArgsUsage, errdefs.ErrInvalidArgument)
	}
	if !optionalObject && c.NArg() > 3 {
		return nil, "", "", fmt.Errorf("%s takes <remote> <object> [<type>], got %d arguments: %w", c.Command.Name, c.NArg(), errdefs.ErrInvalidArgument)
	}
	if named, err = reference.ParseNormalized(c.Args().Get(0)); err != nil {
		return nil, "", "", err
	}
	if c.NArg() >= 2 {
		s := c.Args().Get(1)
		if dgst, err = digest.Parse(s); err != nil {
			return nil, "", "", fmt.Errorf("object %q: not a digest (algorithm:hex, as sha256:…): %v: %w", s, err, errdefs.ErrInvalidArgument)
		}
	}
	if c.NArg() >= 3 {
		mediaType = c.Args().Get(2)
		if err := images.ValidateMediaType(mediaType); err != nil {
			return nil, "", "", fmt.Errorf("object type: %w", err)
		}
	}
	return named, dgst, mediaType, nil
}

func fetchObjectAction(c *cli.Context) error {
	named, dgst, hint, err := objectArgs(c, true)
	if err != nil {
		return err
	}
	resolver, err := objectResolver(c)
	if err != nil {
		return err
	}
	ctx, cancel := signalContext(c)
	defer cancel()

	var (
		name string
		desc ocispec.Descriptor
		rc   io.ReadCloser
	)
	if dgst == "" {
		// containerd's: what the ref names.
		if name, desc, err = resolver.Resolve(ctx, named.String()); err == nil {
			rc, err = fetchFrom(ctx, resolver, name, desc)
		}
	} else {
		name, desc, rc, err = openObject(ctx, c, resolver, named, dgst, hint)
	}
	if err != nil {
		return registryError(c, err)
	}
	defer rc.Close()
	if _, err := io.Copy(os.Stdout, rc); err != nil {
		return fmt.Errorf("fetch %s from %s: %w", images.Describe(desc), name, err)
	}
	return nil
}

// fetchFrom opens desc in the repository name.
func fetchFrom(ctx context.Context, resolver remotes.Resolver, name string, desc ocispec.Descriptor) (io.ReadCloser, error) {
	fetcher, err := resolver.Fetcher(ctx, name)
	if err != nil {
		return nil, err
	}
	return fetcher.Fetch(ctx, desc)
}

// openObject opens dgst in named's repository. The registry API serves a
// blob only to who knows its size, and a manifest by digest only at the
// manifests endpoint (a registry asked there for a blob it has may fail
// with a 500), so the object is looked for, in turn:
//   - with a manifest or index type hint, as a manifest of the repository;
//   - in the image named names (its index, manifests, config, layers);
//   - as a blob of the size the local content store gives it;
//   - without a type hint, as a manifest of the repository.
func openObject(ctx context.Context, c *cli.Context, resolver remotes.Resolver, named reference.Named, dgst digest.Digest, hint string) (string, ocispec.Descriptor, io.ReadCloser, error) {
	repo := reference.TrimNamed(named)
	name := repo.String()
	byDigest, err := reference.WithDigest(repo, dgst)
	if err != nil {
		return "", ocispec.Descriptor{}, nil, err
	}
	asManifest := func() (string, ocispec.Descriptor, io.ReadCloser, error) {
		_, desc, err := resolver.Resolve(ctx, byDigest.String())
		if err != nil {
			return "", ocispec.Descriptor{}, nil, err
		}
		rc, err := fetchFrom(ctx, resolver, name, desc)
		return name, desc, rc, err
	}
	if images.IsManifestType(hint) || images.IsIndexType(hint) {
		return asManifest()
	}

	imageDesc, found, imageErr := findInImage(ctx, resolver, named.String(), dgst)
	switch {
	case found:
		rc, err := fetchFrom(ctx, resolver, name, imageDesc)
		return name, imageDesc, rc, err
	case imageErr != nil && !errdefs.IsNotFound(imageErr):
		return "", ocispec.Descriptor{}, nil, imageErr
	}
	why := fmt.Sprintf("not in the image %s", named)
	if imageErr != nil {
		why = fmt.Sprintf("no image %s", named)
	}

	size, localErr := localSize(c, dgst)
	if localErr == nil {
		mt := hint
		if mt == "" {
			mt = defaultObjectType
		}
		desc := ocispec.Descriptor{MediaType: mt, Digest: dgst, Size: size}
		rc, err := fetchFrom(ctx, resolver, name, desc)
		if err == nil || hint != "" || !errdefs.IsNotFound(err) {
			return name, desc, rc, err
		}
		why += ", not a blob of " + name
	} else {
		why += fmt.Sprintf(", size unknown (local content store: %v)", localErr)
	}
	if hint != "" {
		return "", ocispec.Descriptor{}, nil, fmt.Errorf("object %s: %s: %w", dgst, why, errdefs.ErrNotFound)
	}
	n, desc, rc, err := asManifest()
	if err != nil {
		return "", ocispec.Descriptor{}, nil, fmt.Errorf("object %s: %s, and as a manifest of %s: %w", dgst, why, name, err)
	}
	return n, desc, rc, nil
}

// findInImage walks the image ref names (its index, manifests, config and
// layers) for a descriptor of dgst. An unknown ref is NotFound.
func findInImage(ctx context.Context, resolver remotes.Resolver, ref string, dgst digest.Digest) (ocispec.Descriptor, bool, error) {
	name, root, err := resolver.Resolve(ctx, ref)
	if err != nil {
		return ocispec.Descriptor{}, false, err
	}
	fetcher, err := resolver.Fetcher(ctx, name)
	if err != nil {
		return ocispec.Descriptor{}, false, err
	}
	provider := fetcherProvider{fetcher}
	seen := map[digest.Digest]bool{}
	level := []ocispec.Descriptor{root}
	// An index of manifests of config and layers: three levels, one more
	// for an index of indexes.
	for depth := 0; depth < 4 && len(level) > 0; depth++ {
		var next []ocispec.Descriptor
		for _, d := range level {
			if d.Digest == dgst {
				return d, true, nil
			}
			if seen[d.Digest] || !(images.IsManifestType(d.MediaType) || images.IsIndexType(d.MediaType)) {
				continue
			}
			seen[d.Digest] = true
			children, err := images.Children(ctx, provider, d)
			if err != nil {
				if errdefs.IsNotFound(err) {
					// A manifest the index lists but the registry lacks
					// (another platform not pushed): not our object's.
					continue
				}
				return ocispec.Descriptor{}, false, fmt.Errorf("%s: %w", name, err)
			}
			next = append(next, children...)
		}
		level = next
	}
	return ocispec.Descriptor{}, false, nil
}

// fetcherProvider reads manifests and indexes from a registry as a
// content.Provider, whole, for images.Children.
type fetcherProvider struct{ f remotes.Fetcher }

func (p fetcherProvider) ReaderAt(ctx context.Context, desc ocispec.Descriptor) (content.ReaderAt, error) {
	if desc.Size > images.MaxJSONSize {
		return nil, fmt.Errorf("%s: size %d exceeds %d: %w", images.Describe(desc), desc.Size, images.MaxJSONSize, errdefs.ErrInvalidArgument)
	}
	rc, err := p.f.Fetch(ctx, desc)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, images.MaxJSONSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", images.Describe(desc), err)
	}
	return bytesReaderAt{bytes.NewReader(b)}, nil
}

type bytesReaderAt struct{ *bytes.Reader }

func (bytesReaderAt) Close() error { return nil }

// localSize is the size of dgst in the local content store, if the
// daemon is there to ask.
func localSize(c *cli.Context, dgst digest.Digest) (int64, error) {
	cl, ctx, cancel, err := newClient(c)
	if err != nil {
		return 0, err
	}
	defer cancel()
	info, err := cl.ContentStore().Info(ctx, dgst)
	if err != nil {
		return 0, err
	}
	return info.Size, nil
}

func pushObjectAction(c *cli.Context) error {
	named, dgst, mediaType, err := objectArgs(c, false)
	if err != nil {
		return err
	}
	if mediaType == "" {
		mediaType = defaultObjectType
	}
	resolver, err := objectResolver(c)
	if err != nil {
		return err
	}
	cl, ctx, cancel, err := newClient(c)
	if err != nil {
		return err
	}
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	cs := cl.ContentStore()
	info, err := cs.Info(ctx, dgst)
	if err != nil {
		return fmt.Errorf("object %s: %w", dgst, err)
	}
	desc := ocispec.Descriptor{MediaType: mediaType, Digest: dgst, Size: info.Size}
	if err := images.ValidateDescriptor(desc); err != nil {
		return err
	}
	ra, err := cs.ReaderAt(ctx, desc)
	if err != nil {
		return fmt.Errorf("object %s: %w", dgst, err)
	}
	defer ra.Close()
	// Nothing is tagged: the object goes in by digest.
	repo := reference.TrimNamed(named).String()
	pusher, err := resolver.Pusher(ctx, repo)
	if err != nil {
		return err
	}
	switch err := pusher.Push(ctx, desc, ra); {
	case errdefs.IsAlreadyExists(err):
		fmt.Printf("Pushed %s %s (%s already had it)\n", desc.Digest, desc.MediaType, repo)
	case err != nil:
		return registryError(c, err)
	default:
		fmt.Printf("Pushed %s %s\n", desc.Digest, desc.MediaType)
	}
	return nil
}
