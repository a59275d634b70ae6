package filters

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/berth-containers/berth/pkg/errdefs"
)

// Grammar (whitespace between tokens is ignored):
//
//	filter    := alternative ('|' alternative)*
//	alternative := selector (',' selector)*
//	selector  := fieldpath [operator value]
//	fieldpath := field ('.' field)*
//	field     := quoted | [A-Za-z0-9_-]+
//	operator  := '==' | '!=' | '~='
//	value     := quoted | bare | '/' regexp '/'   (slashes only after '~=')
//	quoted    := a Go double-quoted string literal
//	bare      := one or more printable characters other than space, ',' and '|'
//
// So `a==1,b==2|c` reads (a==1 and b==2) or c, as in containerd.

// ParseAll parses each expression and ors them together, as List requests
// carry several filter strings meaning "any of these". No expressions, or
// only empty ones, give Always.
func ParseAll(exprs ...string) (Filter, error) {
	var any anyOf
	for _, expr := range exprs {
		// An empty expression would make the whole or match everything;
		// containerd skips them, so do we (parse returns nil for them).
		f, err := parse(expr)
		if err != nil {
			return nil, err
		}
		any = append(any, f...)
	}
	if len(any) == 0 {
		return Always, nil
	}
	return any, nil
}

// Parse parses one filter expression. An empty (or all-blank) expression
// gives Always; a malformed one an InvalidArgument error naming the byte
// position and what was expected there.
func Parse(expr string) (Filter, error) {
	f, err := parse(expr)
	if err != nil {
		return nil, err
	}
	if f == nil {
		return Always, nil
	}
	return f, nil
}

func parse(expr string) (anyOf, error) {
	p := &parser{in: expr}
	p.skipSpace()
	if p.pos == len(p.in) {
		return nil, nil
	}
	return p.parse()
}

type parser struct {
	in  string
	pos int
}

func (p *parser) errorf(pos int, format string, args ...interface{}) error {
	return fmt.Errorf("filter %q: position %d: %s: %w", p.in, pos, fmt.Sprintf(format, args...), errdefs.ErrInvalidArgument)
}

// describe names what sits at pos for error messages.
func (p *parser) describe(pos int) string {
	if pos >= len(p.in) {
		return "end of input"
	}
	r, _ := utf8.DecodeRuneInString(p.in[pos:])
	return strconv.QuoteRune(r)
}

func (p *parser) skipSpace() {
	for p.pos < len(p.in) {
		r, n := utf8.DecodeRuneInString(p.in[p.pos:])
		if !unicode.IsSpace(r) {
			return
		}
		p.pos += n
	}
}

func (p *parser) parse() (anyOf, error) {
	var any anyOf
	for {
		all, err := p.alternative()
		if err != nil {
			return nil, err
		}
		any = append(any, all)
		p.skipSpace()
		if p.pos == len(p.in) {
			return any, nil
		}
		if p.in[p.pos] != '|' {
			return nil, p.errorf(p.pos, "expected ',', '|' or end of input, found %s", p.describe(p.pos))
		}
		p.pos++
	}
}

func (p *parser) alternative() (allOf, error) {
	var all allOf
	for {
		s, err := p.selector()
		if err != nil {
			return nil, err
		}
		all = append(all, s)
		p.skipSpace()
		if p.pos < len(p.in) && p.in[p.pos] == ',' {
			p.pos++
			continue
		}
		return all, nil
	}
}

func (p *parser) selector() (*selector, error) {
	fp, err := p.fieldpath()
	if err != nil {
		return nil, err
	}
	s := &selector{fieldpath: fp}
	p.skipSpace()
	opPos := p.pos
	switch {
	case strings.HasPrefix(p.in[p.pos:], "=="):
		s.op = opEqual
	case strings.HasPrefix(p.in[p.pos:], "!="):
		s.op = opNotEqual
	case strings.HasPrefix(p.in[p.pos:], "~="):
		s.op = opMatch
	default:
		// No operator: a presence test. Whatever follows is checked by
		// the caller (',', '|' or the end).
		s.op = opPresent
		return s, nil
	}
	p.pos += 2
	p.skipSpace()
	if s.value, err = p.value(s.op); err != nil {
		return nil, err
	}
	if s.op == opMatch {
		if s.re, err = regexp.Compile(s.value); err != nil {
			return nil, p.errorf(opPos+2, "invalid regexp after \"~=\": %v", err)
		}
	}
	return s, nil
}

func (p *parser) fieldpath() ([]string, error) {
	var fp []string
	for {
		p.skipSpace()
		f, err := p.field()
		if err != nil {
			return nil, err
		}
		fp = append(fp, f)
		if p.pos < len(p.in) && p.in[p.pos] == '.' {
			p.pos++
			continue
		}
		return fp, nil
	}
}

func isFieldByte(c byte) bool {
	return c == '_' || c == '-' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9')
}

func (p *parser) field() (string, error) {
	start := p.pos
	if p.pos < len(p.in) && p.in[p.pos] == '"' {
		return p.quoted()
	}
	for p.pos < len(p.in) && isFieldByte(p.in[p.pos]) {
		p.pos++
	}
	if p.pos == start {
		return "", p.errorf(start, "expected a field name, found %s", p.describe(start))
	}
	return p.in[start:p.pos], nil
}

// quoted scans a Go double-quoted string at pos and returns it unquoted.
func (p *parser) quoted() (string, error) {
	start := p.pos
	i := start + 1
	for i < len(p.in) {
		switch p.in[i] {
		case '\\':
			i += 2
			continue
		case '"':
			s, err := strconv.Unquote(p.in[start : i+1])
			if err != nil {
				return "", p.errorf(start, "invalid quoted string %s: %v", p.in[start:i+1], err)
			}
			p.pos = i + 1
			return s, nil
		}
		i++
	}
	return "", p.errorf(start, "unterminated quoted string, expected closing '\"'")
}

// slashQuoted scans /regexp/ where only "\/" is an escape (for the slash);
// every other backslash belongs to the regexp.
func (p *parser) slashQuoted() (string, error) {
	start := p.pos
	var b strings.Builder
	for i := start + 1; i < len(p.in); i++ {
		switch {
		case p.in[i] == '\\' && i+1 < len(p.in) && p.in[i+1] == '/':
			b.WriteByte('/')
			i++
		case p.in[i] == '/':
			p.pos = i + 1
			return b.String(), nil
		default:
			b.WriteByte(p.in[i])
		}
	}
	return "", p.errorf(start, "unterminated regexp, expected closing '/'")
}

func (p *parser) value(op operator) (string, error) {
	if p.pos >= len(p.in) {
		return "", p.errorf(p.pos, "expected a value after %q, found end of input", op)
	}
	switch p.in[p.pos] {
	case '"':
		return p.quoted()
	case '/':
		if op == opMatch {
			return p.slashQuoted()
		}
	}
	start := p.pos
	for p.pos < len(p.in) {
		r, n := utf8.DecodeRuneInString(p.in[p.pos:])
		if r == ',' || r == '|' || unicode.IsSpace(r) {
			break
		}
		if r == utf8.RuneError && n == 1 {
			return "", p.errorf(p.pos, "invalid UTF-8 in value; quote it")
		}
		if !unicode.IsPrint(r) {
			return "", p.errorf(p.pos, "unprintable character %s in value; quote it", strconv.QuoteRune(r))
		}
		p.pos += n
	}
	if p.pos == start {
		return "", p.errorf(start, "expected a value after %q, found %s", op, p.describe(start))
	}
	return p.in[start:p.pos], nil
}
