// Package api holds Berth's protocol definitions: .proto files that are
// wire-compatible with containerd 1.6's v1 API (same proto packages, service,
// method and message names, field names and numbers) and the Go generated
// from them. The generated packages live below this directory:
//
//	api/types                      containerd.types (Mount, Descriptor, Platform, Metric)
//	api/types/task                 containerd.v1.types (Status, Process, ProcessInfo)
//	api/events                     event payloads (containerd.events.*, image events in containerd.services.images.v1)
//	api/services/<name>/v1         gRPC services (containers, content, diff, events, images,
//	                               introspection, leases, namespaces, snapshots, tasks, version)
//	api/services/ttrpc/events/v1   ttrpc events Forward (shim -> daemon)
//	api/runtime/task/v2            ttrpc shim API, containerd.task.v2.Task
//	api/runtime/runc/options       containerd.runc.v1 Options, CheckpointOptions, ProcessDetails
//
// Regenerate with "bash api/generate.sh"; check with "bash api/verify.sh".
// This package itself has no code; its test pins the wire format.
package api
