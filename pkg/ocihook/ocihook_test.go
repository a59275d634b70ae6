package ocihook

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestLoadAndRender(t *testing.T) {
	bundle := t.TempDir()
	os.WriteFile(filepath.Join(bundle, "config.json"), []byte(`{"ociVersion":"1.0.2","root":{"path":"rootfs"}}`), 0o644)
	state := `{"ociVersion":"1.0.2","id":"c1","status":"created","pid":4242,"bundle":"` + bundle + `","annotations":{"k":"v"}}`
	d, err := Load(strings.NewReader(state))
	if err != nil {
		t.Fatal(err)
	}
	if d.Rootfs != filepath.Join(bundle, "rootfs") || d.State.Pid != 4242 {
		t.Fatalf("details %+v", d)
	}
	got, err := Render([]string{"/bin/cli", "--pid={{pid}}", "{{rootfs}}", "{{ id }}@{{bundle}}", `{{annotation "k"}}`, `{{annotation "none"}}`, "plain"}, d)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/bin/cli", "--pid=4242", filepath.Join(bundle, "rootfs"), "c1@" + bundle, "v", "", "plain"}
	if !slices.Equal(got, want) {
		t.Fatalf("Render = %q, want %q", got, want)
	}

	for _, bad := range []string{"{{pid", "{{nope}}", `{{annotation k}}`} {
		if _, err := Render([]string{bad}, d); err == nil {
			t.Errorf("Render(%q) succeeded", bad)
		}
	}
	for _, in := range []string{"", "{", `{"id":"x"}`, `{"bundle":"/nonexistent-bundle"}`} {
		if _, err := Load(strings.NewReader(in)); err == nil {
			t.Errorf("Load(%q) succeeded", in)
		}
	}
	if err := Exec([]string{"relative"}, Details{State: specs.State{}}); err == nil || !strings.Contains(err.Error(), "absolute") {
		t.Errorf("Exec of a relative path: %v", err)
	}
	if err := Exec(nil, d); err == nil {
		t.Error("Exec of nothing succeeded")
	}
}

// FuzzRender: rendering never panics, and what it returns has no
// placeholder left that it would have had to expand.
func FuzzRender(f *testing.F) {
	for _, s := range []string{"--pid={{pid}}", "{{rootfs}}", `{{annotation "k"}}`, "{{", "}}{{", "{{ id }}x{{bundle}}"} {
		f.Add(s)
	}
	d := Details{State: specs.State{ID: "c", Pid: 1, Bundle: "/b", Annotations: map[string]string{"k": "v"}}, Rootfs: "/b/rootfs"}
	f.Fuzz(func(t *testing.T, arg string) {
		out, err := Render([]string{arg}, d)
		if err != nil {
			return
		}
		if len(out) != 1 {
			t.Fatalf("Render(%q) = %q", arg, out)
		}
	})
}
