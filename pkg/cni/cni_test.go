package cni

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-containers/berth/pkg/errdefs"
)

func TestLoadDefault(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := LoadDefault(dir); !errdefs.IsNotFound(err) {
		t.Fatalf("empty dir: %v", err)
	}
	if _, err := LoadDefault(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("missing dir: no error")
	}
	write("05-broken.conflist", "{")
	write("07-noplugins.conflist", `{"name":"none","cniVersion":"1.0.0","plugins":[]}`)
	write("20-list.conflist", `{"name":"list","cniVersion":"1.0.0","plugins":[{"type":"a"},{"type":"b"}]}`)
	write("30-ignored.txt", `{"name":"txt","type":"a"}`)
	n, err := LoadDefault(dir)
	if err != nil || n.Name != "list" || len(n.Plugins) != 2 {
		t.Fatalf("got %+v %v", n, err)
	}
	// A single plugin's configuration, first by name: a list of one.
	write("10-single.conf", `{"name":"single","cniVersion":"0.4.0","type":"bridge"}`)
	n, err = LoadDefault(dir)
	if err != nil || n.Name != "single" || n.CNIVersion != "0.4.0" || len(n.Plugins) != 1 {
		t.Fatalf("got %+v %v", n, err)
	}
}

// fakePlugin writes a plugin that records its command, environment and
// stdin, then prints out (and exits with code).
func fakePlugin(t *testing.T, dir, name, out string, code int) {
	t.Helper()
	script := "#!/bin/sh\n" +
		"echo \"$CNI_COMMAND " + name + " $CNI_CONTAINERID $CNI_NETNS $CNI_IFNAME $CNI_PATH\" >> " + filepath.Join(dir, "calls") + "\n" +
		"cat > " + filepath.Join(dir, name+".$CNI_COMMAND.stdin") + "\n" +
		"printf '%s' '" + out + "'\n" +
		"exit " + string(rune('0'+code)) + "\n"
	if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestAddDelChain(t *testing.T) {
	dir := t.TempDir()
	fakePlugin(t, dir, "first", `{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.2/24"}]}`, 0)
	fakePlugin(t, dir, "second", `{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.2/24"}],"dns":{}}`, 0)
	p := &Plugins{Path: []string{filepath.Join(dir, "nothing"), dir}}
	n := &Network{Name: "chain", CNIVersion: "1.0.0", Plugins: []json.RawMessage{
		json.RawMessage(`{"type":"first","x":1}`), json.RawMessage(`{"type":"second","prevResult":"stale"}`)}}
	a := Attachment{ContainerID: "ns-c1", NetNS: "/proc/1/ns/net", IfName: "eth0"}
	res, err := p.Add(context.Background(), n, a)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(res), `"dns"`) {
		t.Errorf("result is not the last plugin's: %s", res)
	}
	var second map[string]json.RawMessage
	b, _ := os.ReadFile(filepath.Join(dir, "second.ADD.stdin"))
	if err := json.Unmarshal(b, &second); err != nil {
		t.Fatal(err)
	}
	if string(second["name"]) != `"chain"` || string(second["cniVersion"]) != `"1.0.0"` || !strings.Contains(string(second["prevResult"]), "10.0.0.2") {
		t.Errorf("second plugin got %s", b)
	}
	if err := p.Del(context.Background(), n, Attachment{ContainerID: "ns-c1", IfName: "eth0"}); err != nil {
		t.Fatal(err)
	}
	calls, _ := os.ReadFile(filepath.Join(dir, "calls"))
	want := "ADD first ns-c1 /proc/1/ns/net eth0 " + filepath.Join(dir, "nothing") + ":" + dir + "\n" +
		"ADD second ns-c1 /proc/1/ns/net eth0 " + filepath.Join(dir, "nothing") + ":" + dir + "\n" +
		"DEL second ns-c1  eth0 " + filepath.Join(dir, "nothing") + ":" + dir + "\n" +
		"DEL first ns-c1  eth0 " + filepath.Join(dir, "nothing") + ":" + dir + "\n"
	if string(calls) != want {
		t.Errorf("calls:\n%s\nwant:\n%s", calls, want)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "second.DEL.stdin")); strings.Contains(string(b), "prevResult") {
		t.Errorf("DEL given a prevResult: %s", b)
	}
}

func TestAddFailureRollsBack(t *testing.T) {
	dir := t.TempDir()
	fakePlugin(t, dir, "ok", `{"cniVersion":"1.0.0"}`, 0)
	fakePlugin(t, dir, "bad", `{"code":7,"msg":"no addresses left","details":"range full"}`, 1)
	p := &Plugins{Path: []string{dir}}
	n := &Network{Name: "n", CNIVersion: "1.0.0", Plugins: []json.RawMessage{json.RawMessage(`{"type":"ok"}`), json.RawMessage(`{"type":"bad"}`)}}
	_, err := p.Add(context.Background(), n, Attachment{ContainerID: "c", NetNS: "/x", IfName: "eth0"})
	if err == nil || !strings.Contains(err.Error(), "no addresses left: range full (code 7)") {
		t.Fatalf("error %v", err)
	}
	calls, _ := os.ReadFile(filepath.Join(dir, "calls"))
	if lines := strings.Split(strings.TrimSpace(string(calls)), "\n"); len(lines) != 3 || !strings.HasPrefix(lines[2], "DEL ok ") {
		t.Fatalf("calls after a failed add:\n%s", calls)
	}
	for _, conf := range []string{`{"type":"../ok"}`, `{"type":""}`, `{"type":"missing"}`, `not json`} {
		n := &Network{Name: "n", CNIVersion: "1.0.0", Plugins: []json.RawMessage{json.RawMessage(conf)}}
		if _, err := p.Add(context.Background(), n, Attachment{}); err == nil {
			t.Errorf("%s: no error", conf)
		}
	}
}
