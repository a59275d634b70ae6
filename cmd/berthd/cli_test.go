package main

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// TestNoTemplateLinked keeps berthd's binary small: a package that can call
// reflect's MethodByName with a computed name (text/template, and what
// imports it: html/template, golang.org/x/net/trace, urfave/cli's help)
// makes the linker keep every exported method, about 2.7 MiB of every
// berthd's resident memory (see cli.go). The tags are the Makefile's.
func TestNoTemplateLinked(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	out, err := exec.Command(gobin, "list", "-deps", "-tags", "urfave_cli_no_docs,grpcnotrace", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		switch pkg {
		case "text/template", "html/template", "golang.org/x/net/trace", "github.com/urfave/cli/v2":
			t.Errorf("berthd links %s", pkg)
		}
	}
}

func TestCLI(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		code  int
		wants []string
	}{
		{[]string{"--help"}, 0, []string{"USAGE:\n   berthd [global options] command [command options]\n", "   --config value, -c value     path to the TOML config file; a missing file means the defaults (default: \"/etc/berth/config.toml\")\n", "   --version, -v                print the version\n"}},
		{[]string{"help", "check"}, 0, []string{"NAME:\n   berthd check - check that this host", "   --json      print the config and the checks as JSON (default: false)\n   --help, -h  show help\n"}},
		{[]string{"config"}, 0, []string{"COMMANDS:\n   default  print the default config", "   help, h  Shows a list of commands or help for one command\n"}},
		{[]string{"-v"}, 0, []string{"berthd version "}},
		{[]string{"help", "bogus"}, 3, []string{"No help topic for 'bogus'"}},
		{[]string{"config", "bogus"}, 3, []string{"No help topic for 'bogus'"}},
		{[]string{"--bogus"}, 1, []string{"Incorrect Usage: flag provided but not defined: -bogus\n\nNAME:", "berthd: flag provided but not defined: -bogus"}},
		{[]string{"-c", "/x", "--config", "/y", "config", "dump"}, 1, []string{"Cannot use two forms of the same flag: c config"}},
		{[]string{"bogus"}, 1, []string{`berthd: unexpected argument "bogus" (see berthd --help)`}},
		{[]string{"--config=/nonexistent", "--root", "/srv/b", "-a", "/tmp/x.sock", "config", "dump"}, 0, []string{"root = '/srv/b'", "address = '/tmp/x.sock'"}},
	} {
		out, err := runSelf(t, tc.args...)
		code := 0
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			code = exit.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != tc.code {
			t.Errorf("%q: exit %d, want %d:\n%s", tc.args, code, tc.code, out)
		}
		for _, w := range tc.wants {
			if !strings.Contains(out, w) {
				t.Errorf("%q: no %q in:\n%s", tc.args, w, out)
			}
		}
	}
}
