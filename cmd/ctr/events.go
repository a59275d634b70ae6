package main

import (
	"encoding/json"
	"fmt"

	"github.com/urfave/cli/v2"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/berth-containers/berth/pkg/typeurl"

	// Event payloads decode by their registered proto types.
	_ "github.com/berth-containers/berth/api/events"
	_ "github.com/berth-containers/berth/api/services/images/v1"
)

var eventsCommand = &cli.Command{
	Name:      "events",
	Aliases:   []string{"event"},
	Usage:     "display berthd events",
	ArgsUsage: "[filters]",
	Action: func(c *cli.Context) error {
		cl, _, cancel, err := newClient(c)
		if err != nil {
			return err
		}
		defer cancel()
		ctx, stop := signalContext(c)
		defer stop()
		ch, errs := cl.Subscribe(ctx, c.Args().Slice()...)
		for {
			select {
			case e, ok := <-ch:
				if !ok {
					return nil
				}
				var out []byte
				if e.Event != nil {
					if v, err := typeurl.UnmarshalAny(e.Event); err == nil {
						if m, ok := v.(proto.Message); ok {
							out, _ = protojson.MarshalOptions{UseProtoNames: false}.Marshal(m)
						} else {
							out, _ = json.Marshal(v)
						}
					}
				}
				fmt.Println(e.Timestamp, e.Namespace, e.Topic, string(out))
			case err := <-errs:
				if err != nil && ctx.Err() == nil {
					return err
				}
				return nil
			}
		}
	},
}
