package main

// The plugins berthd ships. Each package registers itself in init(); the
// order here does not matter, the registry orders them by what they require.
import (
	_ "github.com/berth-containers/berth/services/containers"
	_ "github.com/berth-containers/berth/services/content"
	_ "github.com/berth-containers/berth/services/diff"
	_ "github.com/berth-containers/berth/services/events"
	_ "github.com/berth-containers/berth/services/images"
	_ "github.com/berth-containers/berth/services/introspection"
	_ "github.com/berth-containers/berth/services/leases"
	_ "github.com/berth-containers/berth/services/namespaces"
	_ "github.com/berth-containers/berth/services/opt"
	_ "github.com/berth-containers/berth/services/snapshots"
	_ "github.com/berth-containers/berth/services/storage"
	_ "github.com/berth-containers/berth/services/tasks"
	_ "github.com/berth-containers/berth/services/version"
)
