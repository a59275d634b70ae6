package reference

import (
	"regexp"
	"sync"
)

// The grammar is Docker's, which every registry and client agrees on:
//
//	reference    := name [ ":" tag ] [ "@" digest ]
//	name         := [domain '/'] path-component ['/' path-component]*
//	domain       := host [ ":" port ]
//	host         := domain-name | IPv4 | "[" IPv6 "]"
//	path-component := [a-z0-9]+ (separator [a-z0-9]+)*
//	separator    := "." | "_" | "__" | "-"+
//	tag          := [\w][\w.-]{0,127}
//	digest       := algorithm ":" hex (validated by go-digest)
//
// Each piece is matched on its own, anchored, so that an error can say
// which piece is wrong instead of "invalid reference".
var (
	pathComponentRe = lazyRegexp(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`)
	domainNameRe    = lazyRegexp(`^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*$`)
	ipv6Re          = lazyRegexp(`^\[[a-fA-F0-9:]+\]$`)
	portRe          = lazyRegexp(`^[0-9]+$`)
	tagRe           = lazyRegexp(`^[\w][\w.-]{0,127}$`)
	// anchoredIdentifierRe is a bare 64-hex image ID; Docker refuses it as a
	// repository name because it would be ambiguous with an ID.
	anchoredIdentifierRe = lazyRegexp(`^[a-f0-9]{64}$`)
)

// lazyRegexp compiles its pattern on first use: the package is imported by
// every ctr command, and compiling all of the grammar at init cost each of
// them about half a millisecond before main.
func lazyRegexp(src string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(src) })
}

const (
	// NameTotalLengthMax is the longest name (domain and path) allowed.
	NameTotalLengthMax = 255
	// maxReferenceLength bounds the whole string before any parsing, so a
	// hostile input costs nothing.
	maxReferenceLength = 4096
	// maxPortNumber is the largest TCP port.
	maxPortNumber = 65535
)
