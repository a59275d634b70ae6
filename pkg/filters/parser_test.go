package filters

import (
	"fmt"
	"strings"
	"testing"

	"github.com/berth-containers/berth/pkg/errdefs"
)

type obj map[string]string

func (o obj) Field(fp []string) (string, bool) {
	v, ok := o[strings.Join(fp, "\x00")]
	return v, ok
}

func TestParseMatch(t *testing.T) {
	web := obj{"id": "web", "image": "docker.io/library/nginx:latest", "labels\x00app.kubernetes.io/name": "web", "labels\x00tier": "front"}
	db := obj{"id": "db", "image": "docker.io/library/postgres:16", "labels\x00tier": "back"}
	bare := obj{"id": "bare"}
	for _, tc := range []struct {
		expr string
		want []string // ids of matching objects among web, db, bare
	}{
		{"", []string{"web", "db", "bare"}},
		{"   ", []string{"web", "db", "bare"}},
		{"id==web", []string{"web"}},
		{"id!=web", []string{"db", "bare"}},
		{"labels.tier", []string{"web", "db"}},
		{"labels.tier!=front", []string{"db", "bare"}},
		{`labels."app.kubernetes.io/name"==web`, []string{"web"}},
		{`labels."app.kubernetes.io/name"`, []string{"web"}},
		{"image~=nginx", []string{"web"}},
		{"image~=/library\\/post/", []string{"db"}},
		{`image~="^docker\\.io/.*:16$"`, []string{"db"}},
		{"image==docker.io/library/nginx:latest", []string{"web"}},
		{"id==web,labels.tier==front", []string{"web"}},
		{"id==web,labels.tier==back", nil},
		{"id==web|id==db", []string{"web", "db"}},
		{"id==web,labels.tier==back|id==bare", []string{"bare"}},
		{" id == web , labels.tier == front ", []string{"web"}},
		{`id=="web"`, []string{"web"}},
		{`"id"==web`, []string{"web"}},
		{`labels.tier==""`, nil},
		{`labels.missing!=""`, nil},
		{"image~=.*", []string{"web", "db", "bare"}},
	} {
		f, err := Parse(tc.expr)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.expr, err)
			continue
		}
		var got []string
		for _, o := range []obj{web, db, bare} {
			if f.Match(o) {
				got = append(got, o["id"])
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("Parse(%q) matched %v, want %v", tc.expr, got, tc.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		expr, want string
	}{
		{"id==", "position 4: expected a value"},
		{"id==web,", "position 8: expected a field name"},
		{",id", "position 0: expected a field name"},
		{"id==web|", "position 8: expected a field name"},
		{"id||name", "position 3: expected a field name"},
		{"id=web", "position 2: expected ',', '|' or end of input"},
		{"id==a b", "position 6: expected ',', '|' or end of input"},
		{`labels."x==y`, "unterminated quoted string"},
		{`labels."\q"`, "invalid quoted string"},
		{"id~=/abc", "unterminated regexp"},
		{"id~=[", "invalid regexp"},
		{"labels.", "position 7: expected a field name"},
		{"id==\x01", "unprintable"},
		{"id==\xff", "invalid UTF-8"},
	} {
		_, err := Parse(tc.expr)
		if !errdefs.IsInvalidArgument(err) {
			t.Errorf("Parse(%q): want InvalidArgument, got %v", tc.expr, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q): error %q does not mention %q", tc.expr, err, tc.want)
		}
	}
}

func TestParseAll(t *testing.T) {
	for _, tc := range []struct {
		exprs  []string
		always bool
		match  bool // against {id: web}
	}{
		{nil, true, true},
		{[]string{"", " "}, true, true},
		{[]string{"id==db", "id==web"}, false, true},
		{[]string{"id==db", ""}, false, false},
		{[]string{"id==db", "id==x|id==web"}, false, true},
	} {
		f, err := ParseAll(tc.exprs...)
		if err != nil {
			t.Fatalf("ParseAll(%q): %v", tc.exprs, err)
		}
		if (f == Always) != tc.always {
			t.Errorf("ParseAll(%q) always=%v", tc.exprs, f == Always)
		}
		if got := f.Match(obj{"id": "web"}); got != tc.match {
			t.Errorf("ParseAll(%q) match=%v want %v", tc.exprs, got, tc.match)
		}
	}
	if _, err := ParseAll("id==web", "id=="); !errdefs.IsInvalidArgument(err) {
		t.Errorf("ParseAll with a bad expression: %v", err)
	}
}

func TestStringRoundTrip(t *testing.T) {
	for _, expr := range []string{
		`labels."app.kubernetes.io/name"==web`,
		`image~=/a\/b/`,
		`a==" x ",b!="q|r"|c`,
		`a=="/x"`,
		`x==a"b`,
	} {
		f, err := Parse(expr)
		if err != nil {
			t.Fatalf("Parse(%q): %v", expr, err)
		}
		s := f.(fmt.Stringer).String()
		g, err := Parse(s)
		if err != nil {
			t.Fatalf("re-Parse(%q) of %q: %v", s, expr, err)
		}
		if s2 := g.(fmt.Stringer).String(); s2 != s {
			t.Errorf("%q -> %q -> %q", expr, s, s2)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"", "id==web", `labels."a.b"!=c,x|y~=/z\/w/`, `a=="\u00e9\n"`, "a~=[", "a..b", "a==b|",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		flt, err := Parse(expr)
		if err != nil {
			if !errdefs.IsInvalidArgument(err) {
				t.Fatalf("Parse(%q): error of wrong kind: %v", expr, err)
			}
			return
		}
		if flt == Always {
			return
		}
		flt.Match(obj{"a": "b"})
		s := flt.(fmt.Stringer).String()
		again, err := Parse(s)
		if err != nil {
			t.Fatalf("Parse(%q) accepted, but its canonical form %q does not re-parse: %v", expr, s, err)
		}
		if s2 := again.(fmt.Stringer).String(); s2 != s {
			t.Fatalf("canonical form unstable: %q -> %q -> %q", expr, s, s2)
		}
	})
}
