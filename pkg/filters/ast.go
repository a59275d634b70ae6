package filters

import (
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

type operator int

const (
	opPresent operator = iota
	opEqual
	opNotEqual
	opMatch
)

func (o operator) String() string {
	switch o {
	case opEqual:
		return "=="
	case opNotEqual:
		return "!="
	case opMatch:
		return "~="
	}
	return ""
}

// selector is one `fieldpath op value` test.
type selector struct {
	fieldpath []string
	op        operator
	value     string
	re        *regexp.Regexp
}

// Match follows containerd: "!=" and "~=" compare against the empty string
// when the field is absent, so `labels.x!=y` matches objects without x.
func (s *selector) Match(a Adaptor) bool {
	value, present := a.Field(s.fieldpath)
	switch s.op {
	case opPresent:
		return present
	case opEqual:
		return present && value == s.value
	case opNotEqual:
		return value != s.value
	case opMatch:
		return s.re.MatchString(value)
	}
	return false
}

// String gives a canonical form that Parse reads back to the same filter.
func (s *selector) String() string {
	var b strings.Builder
	for i, f := range s.fieldpath {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(quoteIfNeeded(f, isBareField))
	}
	if s.op != opPresent {
		b.WriteString(s.op.String())
		b.WriteString(quoteIfNeeded(s.value, isBareValue))
	}
	return b.String()
}

func isBareField(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isFieldByte(s[i]) {
			return false
		}
	}
	return s != ""
}

func isBareValue(s string) bool {
	if s == "" || s[0] == '"' || s[0] == '/' {
		return false
	}
	for _, r := range s {
		if r == ',' || r == '|' || r == utf8.RuneError || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

func quoteIfNeeded(s string, bare func(string) bool) string {
	if bare(s) {
		return s
	}
	return strconv.Quote(s)
}

// allOf matches when every selector does (the ',' join).
type allOf []*selector

func (all allOf) Match(a Adaptor) bool {
	for _, s := range all {
		if !s.Match(a) {
			return false
		}
	}
	return true
}

func (all allOf) String() string {
	parts := make([]string, len(all))
	for i, s := range all {
		parts[i] = s.String()
	}
	return strings.Join(parts, ",")
}

// anyOf matches when some alternative does (the '|' join, and ParseAll).
type anyOf []Filter

func (any anyOf) Match(a Adaptor) bool {
	for _, f := range any {
		if f.Match(a) {
			return true
		}
	}
	return false
}

func (any anyOf) String() string {
	parts := make([]string, len(any))
	for i, f := range any {
		parts[i] = f.(interface{ String() string }).String()
	}
	return strings.Join(parts, "|")
}
