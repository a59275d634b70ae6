package platforms

import (
	"bufio"
	"os"
	"runtime"
	"strings"
	"sync"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Default is this host's platform: runtime.GOOS/GOARCH, with the CPU
// variant for arm (read from /proc/cpuinfo) and "v8" for arm64.
func Default() ocispec.Platform {
	return ocispec.Platform{
		OS:           runtime.GOOS,
		Architecture: runtime.GOARCH,
		Variant:      cpuVariant(),
	}
}

// DefaultString is Format(Default()).
func DefaultString() string { return Format(Default()) }

// DefaultMatcher matches this host's platform and those it can run,
// preferring the host's own.
func DefaultMatcher() MatchComparer { return Only(Default()) }

var (
	variantOnce sync.Once
	variant     string
)

func cpuVariant() string {
	variantOnce.Do(func() {
		switch runtime.GOARCH {
		case "arm64":
			variant = "v8"
		case "arm":
			variant = armVariant(readCPUArchitecture("/proc/cpuinfo"))
		}
	})
	return variant
}

// armVariant maps cpuinfo's "CPU architecture" to a variant. A 32-bit
// binary on a v8 CPU runs v7 code, so v8 is reported as v7 as containerd
// does; unknown values default to v7 too.
func armVariant(arch string) string {
	switch strings.ToLower(arch) {
	case "5", "5te", "5tej":
		return "v5"
	case "6", "6tej":
		return "v6"
	}
	return "v7"
}

func readCPUArchitecture(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, value, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(key) == "CPU architecture" {
			return strings.TrimSpace(value)
		}
	}
	return ""
}
