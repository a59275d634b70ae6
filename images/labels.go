package images

// Labels and annotations shared with containerd's clients and GC.
const (
	// AnnotationImageName on an index.json entry is the image's full name.
	AnnotationImageName = "io.containerd.image.name"

	// LabelUncompressed on a layer blob is its diff ID, so the uncompressed
	// digest is known without reading the layer again.
	LabelUncompressed = "containerd.io/uncompressed"

	// LabelGCRefSnapshot + snapshotter on a config blob names the chain ID
	// unpacked from it; GC keeps that snapshot while the config lives.
	LabelGCRefSnapshot = "containerd.io/gc.ref.snapshot."

	// LabelGCRefContent + suffix on a manifest or index names a child blob
	// GC must keep: "m.N" manifests, "config", "l.N" layers.
	LabelGCRefContent = "containerd.io/gc.ref.content."

	// LabelSnapshotRef on a snapshot being prepared names the chain ID it
	// will be committed as, so remote snapshotters can offer it ready-made.
	LabelSnapshotRef = "containerd.io/snapshot.ref"
)
