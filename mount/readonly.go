package mount

import "strings"

// ReadOnly reports whether m mounts read-only: it says "ro", or it is an
// overlay without an upper directory (which the kernel mounts read-only).
func ReadOnly(m Mount) bool {
	ro, upper := false, false
	for _, o := range m.Options {
		switch {
		case o == "ro":
			ro = true
		case o == "rw":
			ro = false
		case strings.HasPrefix(o, "upperdir="):
			upper = true
		}
	}
	return ro || (m.Type == "overlay" && !upper)
}
