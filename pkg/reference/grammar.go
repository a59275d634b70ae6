package reference

import "regexp"

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
	pathComponentRe = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`)
	domainNameRe    = regexp.MustCompile(`^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*$`)
	ipv6Re          = regexp.MustCompile(`^\[[a-fA-F0-9:]+\]$`)
	portRe          = regexp.MustCompile(`^[0-9]+$`)
	tagRe           = regexp.MustCompile(`^[\w][\w.-]{0,127}$`)
	// anchoredIdentifierRe is a bare 64-hex image ID; Docker refuses it as a
	// repository name because it would be ambiguous with an ID.
	anchoredIdentifierRe = regexp.MustCompile(`^[a-f0-9]{64}$`)
)

const (
	// NameTotalLengthMax is the longest name (domain and path) allowed.
	NameTotalLengthMax = 255
	// maxReferenceLength bounds the whole string before any parsing, so a
	// hostile input costs nothing.
	maxReferenceLength = 4096
	// maxPortNumber is the largest TCP port.
	maxPortNumber = 65535
)
