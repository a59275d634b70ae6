// Package platforms parses, formats and matches OCI platforms ("linux/amd64",
// "linux/arm/v7") the way containerd does, so a multi-platform index picks
// the same manifest here as there.
package platforms

import (
	"fmt"
	"regexp"
	"runtime"
	"strings"

	"github.com/berth-containers/berth/pkg/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// specifierRe is what one part of a specifier may hold.
var specifierRe = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// maxSpecifierLength bounds input before parsing.
const maxSpecifierLength = 256

// Parse parses "os", "arch", "os/arch" or "os/arch/variant" and returns the
// normalised platform. A lone part is taken as an OS when it is a known one
// (the architecture is then this host's), else as an architecture (the OS is
// this host's).
func Parse(specifier string) (ocispec.Platform, error) {
	var p ocispec.Platform
	if specifier == "" {
		return p, fmt.Errorf("platform specifier is empty: %w", errdefs.ErrInvalidArgument)
	}
	if len(specifier) > maxSpecifierLength {
		return p, fmt.Errorf("platform specifier longer than %d characters: %w", maxSpecifierLength, errdefs.ErrInvalidArgument)
	}
	parts := strings.Split(specifier, "/")
	for _, part := range parts {
		if !specifierRe.MatchString(part) {
			return p, fmt.Errorf("platform %q: part %q must match %s: %w", specifier, part, specifierRe, errdefs.ErrInvalidArgument)
		}
	}
	switch len(parts) {
	case 1:
		if isKnownOS(strings.ToLower(parts[0])) || strings.ToLower(parts[0]) == "macos" {
			p = Default()
			p.OS = parts[0]
			return Normalize(p), nil
		}
		arch, variant := normalizeArch(parts[0], "")
		if isKnownArch(arch) {
			return Normalize(ocispec.Platform{OS: runtime.GOOS, Architecture: arch, Variant: variant}), nil
		}
		return p, fmt.Errorf("platform %q: unknown operating system or architecture: %w", specifier, errdefs.ErrInvalidArgument)
	case 2:
		p = ocispec.Platform{OS: parts[0], Architecture: parts[1]}
	case 3:
		p = ocispec.Platform{OS: parts[0], Architecture: parts[1], Variant: parts[2]}
	default:
		return p, fmt.Errorf("platform %q: more than os/arch/variant: %w", specifier, errdefs.ErrInvalidArgument)
	}
	return Normalize(p), nil
}

// MustParse is Parse for constants; it panics on error.
func MustParse(specifier string) ocispec.Platform {
	p, err := Parse(specifier)
	if err != nil {
		panic(err)
	}
	return p
}

// ParseAll parses each specifier.
func ParseAll(specifiers []string) ([]ocispec.Platform, error) {
	out := make([]ocispec.Platform, 0, len(specifiers))
	for _, s := range specifiers {
		p, err := Parse(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// Format prints os/arch[/variant]; "unknown" stands for an empty OS or
// architecture so the output always parses.
func Format(p ocispec.Platform) string {
	if p.OS == "" && p.Architecture == "" {
		return "unknown"
	}
	os, arch := p.OS, p.Architecture
	if os == "" {
		os = "unknown"
	}
	if arch == "" {
		arch = "unknown"
	}
	s := os + "/" + arch
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// Normalize lower-cases and maps aliases to the names Go and OCI use
// (x86_64 -> amd64, aarch64 -> arm64, armhf -> arm/v7), drops variants that
// are the default (arm64/v8, amd64/v1) and gives arm its default v7.
func Normalize(p ocispec.Platform) ocispec.Platform {
	p.OS = normalizeOS(p.OS)
	p.Architecture, p.Variant = normalizeArch(p.Architecture, p.Variant)
	return p
}

func normalizeOS(os string) string {
	os = strings.ToLower(os)
	if os == "macos" {
		return "darwin"
	}
	return os
}

// normalizeVariant makes "7", "v7" and "v7.0" all "v7".
func normalizeVariant(v string) string {
	if v == "" {
		return ""
	}
	for strings.HasSuffix(v, ".0") {
		v = strings.TrimSuffix(v, ".0")
	}
	if v == "" {
		return ""
	}
	if !strings.HasPrefix(v, "v") {
		v = "v" + v
	}
	return v
}

func normalizeArch(arch, variant string) (string, string) {
	arch, variant = strings.ToLower(arch), strings.ToLower(variant)
	switch arch {
	case "i386", "386":
		return "386", ""
	case "x86_64", "x86-64", "amd64":
		variant = normalizeVariant(variant)
		if variant == "v1" {
			variant = ""
		}
		return "amd64", variant
	case "aarch64", "arm64":
		variant = normalizeVariant(variant)
		if variant == "v8" {
			variant = ""
		}
		return "arm64", variant
	case "armhf":
		return "arm", "v7"
	case "armel":
		return "arm", "v6"
	case "arm":
		variant = normalizeVariant(variant)
		if variant == "" {
			variant = "v7"
		}
		return "arm", variant
	}
	return arch, variant
}

var knownOS = map[string]bool{
	"aix": true, "android": true, "darwin": true, "dragonfly": true, "freebsd": true,
	"hurd": true, "illumos": true, "ios": true, "js": true, "linux": true, "nacl": true,
	"netbsd": true, "openbsd": true, "plan9": true, "solaris": true, "wasip1": true,
	"windows": true, "zos": true,
}

var knownArch = map[string]bool{
	"386": true, "amd64": true, "amd64p32": true, "arm": true, "armbe": true, "arm64": true,
	"arm64be": true, "loong64": true, "mips": true, "mipsle": true, "mips64": true,
	"mips64le": true, "mips64p32": true, "mips64p32le": true, "ppc": true, "ppc64": true,
	"ppc64le": true, "riscv": true, "riscv64": true, "s390": true, "s390x": true,
	"sparc": true, "sparc64": true, "wasm": true,
}

func isKnownOS(os string) bool     { return knownOS[os] }
func isKnownArch(arch string) bool { return knownArch[arch] }
