package plugin

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/berth-containers/berth/pkg/errdefs"
)

const (
	typeA Type = "test.a.v1"
	typeB Type = "test.b.v1"
	typeC Type = "test.c.v1"
)

func reg(t Type, id string, requires ...Type) *Registration {
	return &Registration{Type: t, ID: id, Requires: requires, InitFn: func(ic *InitContext) (interface{}, error) {
		return ic.Config, nil
	}}
}

func uris(regs []*Registration) string {
	var s []string
	for _, r := range regs {
		s = append(s, r.URI())
	}
	return strings.Join(s, " ")
}

func TestGraphOrder(t *testing.T) {
	for _, tc := range []struct {
		name     string
		regs     []*Registration
		disabled []string
		want     string
		err      string
	}{
		{
			name: "registration order kept when free",
			regs: []*Registration{reg(typeA, "x"), reg(typeB, "y"), reg(typeA, "z")},
			want: "test.a.v1.x test.b.v1.y test.a.v1.z",
		},
		{
			name: "requires come first",
			regs: []*Registration{reg(typeC, "svc", typeB), reg(typeB, "meta", typeA), reg(typeA, "content")},
			want: "test.a.v1.content test.b.v1.meta test.c.v1.svc",
		},
		{
			name: "all plugins of a required type",
			regs: []*Registration{reg(typeB, "user", typeA), reg(typeA, "one"), reg(typeC, "other"), reg(typeA, "two")},
			want: "test.a.v1.one test.a.v1.two test.b.v1.user test.c.v1.other",
		},
		{
			name: "star goes last, star plugins keep their order",
			regs: []*Registration{reg(typeC, "intro", All), reg(typeC, "intro2", All), reg(typeA, "x"), reg(typeB, "y", typeA)},
			want: "test.a.v1.x test.b.v1.y test.c.v1.intro test.c.v1.intro2",
		},
		{
			name: "same-type requirement excludes self",
			regs: []*Registration{reg(typeA, "self", typeA)},
			want: "test.a.v1.self",
		},
		{
			name: "cycle",
			regs: []*Registration{reg(typeC, "top", typeA), reg(typeA, "a", typeB), reg(typeB, "b", typeA)},
			err:  "plugin dependency cycle: test.a.v1.a -> test.b.v1.b -> test.a.v1.a",
		},
		{
			name:     "disabled by uri and by id",
			regs:     []*Registration{reg(typeA, "x"), reg(typeB, "y"), reg(typeC, "z")},
			disabled: []string{"test.a.v1.x", "z"},
			want:     "test.b.v1.y",
		},
		{
			name:     "disabling breaks a cycle",
			regs:     []*Registration{reg(typeA, "a", typeB), reg(typeB, "b", typeA)},
			disabled: []string{"b"},
			want:     "test.a.v1.a",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := NewRegistry()
			for _, x := range tc.regs {
				if err := r.Register(x); err != nil {
					t.Fatal(err)
				}
			}
			got, err := r.Graph(Disabled(tc.disabled))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if uris(got) != tc.want {
				t.Fatalf("order %q, want %q", uris(got), tc.want)
			}
		})
	}
}

func TestRegisterRejects(t *testing.T) {
	type cfg struct{ X int }
	ok := func(*InitContext) (interface{}, error) { return nil, nil }
	for name, r := range map[string]*Registration{
		"nil":           nil,
		"no type":       {ID: "x", InitFn: ok},
		"star type":     {Type: All, ID: "x", InitFn: ok},
		"bad id":        {Type: typeA, ID: "a b", InitFn: ok},
		"no init":       {Type: typeA, ID: "x"},
		"config struct": {Type: typeA, ID: "x", InitFn: ok, Config: cfg{}},
	} {
		if err := NewRegistry().Register(r); !errdefs.IsInvalidArgument(err) {
			t.Errorf("%s: %v", name, err)
		}
	}
	r := NewRegistry()
	if err := r.Register(reg(typeA, "x")); err != nil {
		t.Fatal(err)
	}
	if err := r.Register(reg(typeA, "x")); !errdefs.IsAlreadyExists(err) {
		t.Fatalf("duplicate: %v", err)
	}
}

func TestLoad(t *testing.T) {
	boom := errors.New("boom")
	var sawByType map[string]interface{}
	regs := []*Registration{
		{Type: typeA, ID: "skip", InitFn: func(*InitContext) (interface{}, error) {
			return nil, fmt.Errorf("no btrfs here: %w", ErrSkipPlugin)
		}},
		{Type: typeA, ID: "ok", InitFn: func(ic *InitContext) (interface{}, error) {
			ic.Meta.Exports["root"] = ic.Root
			ic.Meta.Capabilities = append(ic.Meta.Capabilities, "remap-ids")
			return "a-instance", nil
		}},
		{Type: typeB, ID: "broken", InitFn: func(*InitContext) (interface{}, error) { return nil, boom }},
		{Type: typeB, ID: "panics", InitFn: func(*InitContext) (interface{}, error) { panic("oops") }},
		{Type: typeC, ID: "needs-b", Requires: []Type{typeB}, InitFn: func(*InitContext) (interface{}, error) {
			t.Error("init ran although its dependency failed")
			return nil, nil
		}},
		{Type: typeC, ID: "needs-a", Requires: []Type{typeA}, InitFn: func(ic *InitContext) (interface{}, error) {
			var err error
			sawByType, err = ic.GetByType(typeA)
			if err != nil {
				return nil, err
			}
			if _, err := ic.GetByID(typeB, "broken"); !errors.Is(err, boom) {
				t.Errorf("GetByID of a failed plugin: %v", err)
			}
			if _, err := ic.GetByType(typeB); !errdefs.IsNotFound(err) || !strings.Contains(err.Error(), "boom") {
				t.Errorf("GetByType of failed type: %v", err)
			}
			return "c", nil
		}},
	}
	set := Load(context.Background(), regs, LoadOptions{Root: "/r", State: "/s"})

	all := set.All()
	if len(all) != len(regs) {
		t.Fatalf("%d plugins recorded, want %d", len(all), len(regs))
	}
	byID := map[string]*Plugin{}
	for _, p := range all {
		byID[p.Registration.ID] = p
	}
	if !byID["skip"].Skipped() {
		t.Errorf("skip: %v", byID["skip"].Err())
	}
	if p := byID["ok"]; p.Err() != nil || p.Meta.Exports["root"] != "/r/test.a.v1.ok" || len(p.Meta.Capabilities) != 1 {
		t.Errorf("ok: %v %+v", p.Err(), p.Meta)
	}
	if !errors.Is(byID["broken"].Err(), boom) {
		t.Errorf("broken: %v", byID["broken"].Err())
	}
	if err := byID["panics"].Err(); err == nil || !strings.Contains(err.Error(), "panicked") {
		t.Errorf("panics: %v", err)
	}
	if err := byID["needs-b"].Err(); !errdefs.IsFailedPrecondition(err) || !strings.Contains(err.Error(), "test.b.v1.broken") {
		t.Errorf("needs-b: %v", err)
	}
	if inst, err := byID["needs-a"].Instance(); err != nil || inst != "c" {
		t.Errorf("needs-a: %v %v", inst, err)
	}
	if len(sawByType) != 1 || sawByType["ok"] != "a-instance" {
		t.Errorf("GetByType(a) = %v", sawByType)
	}
}

func TestLoadConfigAndSkipOnlyDependency(t *testing.T) {
	type cfg struct{ Size int }
	regs := []*Registration{
		{Type: typeA, ID: "skip", InitFn: func(*InitContext) (interface{}, error) { return nil, ErrSkipPlugin }},
		{Type: typeB, ID: "user", Requires: []Type{typeA}, Config: &cfg{Size: 1}, InitFn: func(ic *InitContext) (interface{}, error) {
			// A skipped dependency is not a failed one: the plugin runs and
			// decides for itself.
			return ic.Config.(*cfg).Size, nil
		}},
		{Type: typeC, ID: "badcfg", Config: &cfg{}, InitFn: func(*InitContext) (interface{}, error) { return nil, nil }},
	}
	set := Load(context.Background(), regs, LoadOptions{Config: func(r *Registration) (interface{}, error) {
		if r.ID == "badcfg" {
			return nil, errors.New("bad toml")
		}
		return &cfg{Size: 42}, nil
	}})
	if v, err := set.GetByID(typeB, "user"); err != nil || v != 42 {
		t.Fatalf("user: %v %v", v, err)
	}
	if _, err := set.GetByID(typeC, "badcfg"); err == nil || !strings.Contains(err.Error(), "bad toml") {
		t.Fatalf("badcfg: %v", err)
	}
	if _, err := set.GetByID(typeC, "nosuch"); !errdefs.IsNotFound(err) {
		t.Fatalf("nosuch: %v", err)
	}
}
