// Package version holds Berth's version, set at build time with
// -ldflags "-X github.com/berth-containers/berth/pkg/version.Version=…".
package version

var (
	// Version is the release version.
	Version = "0.1.0-dev"
	// Revision is the VCS revision.
	Revision = "unknown"
	// Package is the module path, shown by ctr version.
	Package = "github.com/berth-containers/berth"
)
