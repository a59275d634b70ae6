package images

import "github.com/opencontainers/go-digest"

// ChainID is the identity of a stack of layers, as containerd and Docker
// compute it: chain(1) = diffID(1), chain(n) = sha256(chain(n-1) + " " +
// diffID(n)). Snapshots of unpacked layers are named by it. Empty input
// gives "".
func ChainID(diffIDs []digest.Digest) digest.Digest {
	ids := ChainIDs(diffIDs)
	if len(ids) == 0 {
		return ""
	}
	return ids[len(ids)-1]
}

// ChainIDs returns the chain ID of every prefix of diffIDs.
func ChainIDs(diffIDs []digest.Digest) []digest.Digest {
	out := make([]digest.Digest, len(diffIDs))
	for i, d := range diffIDs {
		if i == 0 {
			out[i] = d
			continue
		}
		out[i] = digest.FromString(out[i-1].String() + " " + d.String())
	}
	return out
}
