// Package images is Berth's image model: media types, walking an image's
// content graph (index -> manifest -> config and layers), choosing the
// manifest for a platform, chain IDs, and unpacking layers into a
// snapshotter. Image records themselves are metadata.Image. archive/
// imports and exports image tarballs; testimage/ builds small images
// without a network.
package images
