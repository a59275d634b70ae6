package cio

import (
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-containers/berth/pkg/errdefs"
)

func TestNullIO(t *testing.T) {
	io, err := NullIO("x")
	if err != nil {
		t.Fatal(err)
	}
	if io.Config() != (Config{}) {
		t.Fatalf("config %+v", io.Config())
	}
	io.Cancel()
	io.Wait()
	if err := io.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestParseLogURI(t *testing.T) {
	for _, tc := range []struct {
		uri string
		ok  bool
	}{
		{"file:///var/log/app.log", true},
		{"binary:///usr/bin/logger", true},
		{"binary:///usr/bin/logger?id=web&level=debug", true},
		{"file:/var/log/app.log", true}, // same URL, no authority
		{"file://host/var/log/app.log", false},
		{"file://user@/var/log/app.log", false},
		{"file:relative.log", false},
		{"file:///var/log/../../etc/shadow", false},
		{"file:///var//log", false},
		{"file:///var/log/app.log?x=1", false},
		{"file:///var/log/a%00b", false},
		{"binary:///usr/bin/logger?a=%00", false},
		{"binary:///usr/bin/logger#frag", false},
		{"http:///var/log/app.log", false},
		{"fifo:///x", false},
		{"/var/log/app.log", false},
		{"", false},
	} {
		t.Run(tc.uri, func(t *testing.T) {
			u, err := ParseLogURI(tc.uri)
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				io, err := LogURI(u)("id")
				if err != nil {
					t.Fatal(err)
				}
				cfg := io.Config()
				if cfg.Stdin != "" || cfg.Terminal || cfg.Stdout != u.String() || cfg.Stderr != u.String() {
					t.Fatalf("config %+v", cfg)
				}
				return
			}
			if !errdefs.IsInvalidArgument(err) {
				t.Fatalf("err %v, want invalid argument", err)
			}
		})
	}
	if _, err := LogURI(nil)("id"); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("nil uri: %v", err)
	}
	if _, err := LogURI(&url.URL{Scheme: "file", Path: "rel"})("id"); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("relative uri: %v", err)
	}
}

func TestLogFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "logs", "app.log")
	io, err := LogFile(p)("id")
	if err != nil {
		t.Fatal(err)
	}
	if want := "file://" + p; io.Config().Stdout != want || io.Config().Stderr != want {
		t.Fatalf("config %+v", io.Config())
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("log file not created: %v", err)
	}
}

func TestBinaryIO(t *testing.T) {
	io, err := BinaryIO("/usr/local/bin/log-driver", map[string]string{"id": "web", "dir": "/var/log x"})("id")
	if err != nil {
		t.Fatal(err)
	}
	cfg := io.Config()
	u, err := ParseLogURI(cfg.Stdout)
	if err != nil {
		t.Fatal(err)
	}
	if u.Scheme != "binary" || u.Path != "/usr/local/bin/log-driver" || u.Query().Get("dir") != "/var/log x" || cfg.Stderr != cfg.Stdout {
		t.Fatalf("config %+v", cfg)
	}
}
