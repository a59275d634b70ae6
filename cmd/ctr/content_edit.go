package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/content"
	"github.com/berth-containers/berth/pkg/errdefs"
)

func init() {
	contentCommand.Subcommands = append(contentCommand.Subcommands, contentEditCommand)
}

// maxEditBlob bounds what `content edit` hands an editor: manifests,
// indexes and configs, not layers.
const maxEditBlob = 16 << 20

// contentEditCommand is containerd's `ctr content edit`: the blob in an
// editor, the result stored as a new blob whose digest is printed. Like
// `content ingest` it takes no lease: the new blob goes at the next
// collection unless something (a label, an image) references it.
var contentEditCommand = &cli.Command{
	Name:      "edit",
	Usage:     "edit a blob and return a new digest",
	ArgsUsage: "[flags] <digest>",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "validate", Usage: "validate the result against a format (json)"},
		&cli.StringFlag{Name: "editor", Usage: "select editor (vim, emacs, etc.)", EnvVars: []string{"EDITOR"}},
	},
	Action: func(c *cli.Context) error {
		dgst, err := digest.Parse(c.Args().First())
		if err != nil {
			return fmt.Errorf("digest %q: %w", c.Args().First(), err)
		}
		validate := c.String("validate")
		if validate != "" && validate != "json" {
			return fmt.Errorf("unsupported --validate %q: only json", validate)
		}
		editor := c.String("editor")
		if editor == "" {
			return errors.New("no editor: set --editor or EDITOR")
		}
		cl, ctx, cancel, err := newClient(c)
		if err != nil {
			return err
		}
		defer cancel()
		cs := cl.ContentStore()
		ra, err := cs.ReaderAt(ctx, ocispec.Descriptor{Digest: dgst})
		if err != nil {
			return err
		}
		size := ra.Size()
		if size > maxEditBlob {
			ra.Close()
			return fmt.Errorf("blob %s is %d bytes, more than %d to edit", dgst, size, maxEditBlob)
		}
		tmp, err := os.CreateTemp("", "ctr-edit-")
		if err != nil {
			ra.Close()
			return err
		}
		defer os.Remove(tmp.Name())
		_, err = io.Copy(tmp, io.NewSectionReader(ra, 0, size))
		ra.Close()
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("copy %s for editing: %w", dgst, err)
		}
		// The editor may be a command with arguments ("code --wait").
		cmd := exec.Command("/bin/sh", "-c", editor+` "$1"`, "editor", tmp.Name())
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("editor %q: %w", editor, err)
		}
		edited, err := os.ReadFile(tmp.Name())
		if err != nil {
			return err
		}
		if validate == "json" && !json.Valid(edited) {
			return errors.New("edited content is not valid JSON; nothing stored")
		}
		nd := digest.FromBytes(edited)
		w, err := cs.Writer(ctx, content.WithRef("edit-"+nd.Encoded()), content.WithDescriptor(ocispec.Descriptor{Size: int64(len(edited)), Digest: nd}))
		switch {
		case errdefs.IsAlreadyExists(err):
		case err != nil:
			return err
		default:
			defer w.Close()
			if _, err := w.Write(edited); err != nil {
				return err
			}
			if err := w.Commit(ctx, int64(len(edited)), nd); err != nil && !errdefs.IsAlreadyExists(err) {
				return err
			}
		}
		fmt.Fprintln(c.App.Writer, nd)
		return nil
	},
}
