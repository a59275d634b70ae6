// Package filters implements containerd's filter syntax, once, for every
// List call: `id==web`, `labels."app"==db`, `image~=busybox`, `name!=x`,
// a bare field path tests presence, `,` joins with and, `|` with or
// (and binds tighter). Quoted values and field path parts take Go-style
// escapes; regexp values may be quoted with / / too.
package filters

// Adaptor exposes an object's fields to a filter. fieldpath is the dotted
// path split into parts: ["labels", "app"].
type Adaptor interface {
	Field(fieldpath []string) (value string, present bool)
}

// AdapterFunc adapts a function to Adaptor.
type AdapterFunc func(fieldpath []string) (string, bool)

// Field implements Adaptor.
func (fn AdapterFunc) Field(fieldpath []string) (string, bool) { return fn(fieldpath) }

// Filter matches objects.
type Filter interface {
	Match(adaptor Adaptor) bool
}

// FilterFunc adapts a function to Filter.
type FilterFunc func(Adaptor) bool

// Match implements Filter.
func (fn FilterFunc) Match(adaptor Adaptor) bool { return fn(adaptor) }

// Always matches everything; what Parse returns for no expressions. It is a
// comparable value, so callers may test f == Always to skip filtering.
var Always Filter = always{}

type always struct{}

func (always) Match(Adaptor) bool { return true }
func (always) String() string     { return "" }

// ParseAll parses each expression and ors them together, as List requests
// carry several filter strings meaning "any of these". A malformed
// expression gives an InvalidArgument error naming the position.
// Implemented in parser.go.
