package main

import (
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"

	"github.com/berth-containers/berth/client"
	"github.com/berth-containers/berth/content"
	"github.com/berth-containers/berth/images"
)

func init() {
	contentCommand.Subcommands = append(contentCommand.Subcommands, contentPruneCommand)
}

// contentPruneCommand is containerd 1.6's `ctr content prune`.
var contentPruneCommand = &cli.Command{
	Name:        "prune",
	Usage:       "prunes content from the content store",
	Subcommands: []*cli.Command{contentPruneReferencesCommand},
}

// contentPruneReferencesCommand is containerd 1.6's `ctr content prune
// references`: every blob's layer references (containerd.io/gc.ref.content.l.N
// and the legacy numbered containerd.io/gc.ref.content.N other than .0) are
// removed, then a lease is created and deleted so the garbage collector
// runs (and, without --async, is waited for). Layers that nothing else
// holds are collected; what was unpacked stays, since configs hold their
// snapshots. --dry logs at debug level what would be removed and changes no
// label; like containerd's, it still triggers the collection.
var contentPruneReferencesCommand = &cli.Command{
	Name:  "references",
	Usage: "prunes preference labels from the content store (layers only by default)",
	Flags: []cli.Flag{
		&cli.BoolFlag{Name: "async", Usage: "allow garbage collection to cleanup asynchronously"},
		&cli.BoolFlag{Name: "dry", Usage: "just show updates without applying (enables debug logging)"},
	},
	Action: func(c *cli.Context) error {
		cl, ctx, cancel, err := newClient(c)
		if err != nil {
			return err
		}
		defer cancel()
		dry := c.Bool("dry")
		if dry {
			logrus.SetLevel(logrus.DebugLevel)
			logrus.Debug("dry run, no changes will be applied")
		}
		cs := cl.ContentStore()
		if err := cs.Walk(ctx, func(info content.Info) error {
			var fields []string
			for k := range info.Labels {
				if !isLayerRefLabel(k) {
					continue
				}
				logrus.WithFields(logrus.Fields{"digest": info.Digest, "label": k}).Debug("Removing label")
				if dry {
					continue
				}
				fields = append(fields, "labels."+k)
				delete(info.Labels, k)
			}
			if len(fields) == 0 {
				return nil
			}
			_, err := cs.Update(ctx, info, fields...)
			return err
		}); err != nil {
			return err
		}
		ls := cl.Leases()
		l, err := ls.Create(ctx, client.WithExpiration(time.Hour))
		if err != nil {
			return err
		}
		return ls.Delete(ctx, l.ID, !c.Bool("async"))
	},
}

// isLayerRefLabel reports whether a content label key is a GC reference
// to a layer: "…gc.ref.content.l.N", or the legacy "…gc.ref.content.N"
// where N is all digits and not 0 (0 was the config).
func isLayerRefLabel(key string) bool {
	rest, ok := strings.CutPrefix(key, images.LabelGCRefContent)
	if !ok {
		return false
	}
	if strings.HasPrefix(rest, "l.") {
		return true
	}
	if rest == "0" {
		return false
	}
	for _, r := range rest {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
