package integration

import (
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// missingFlags are the flags of containerd 1.6's ctr that ours does not
// have, by command (the README's status table says why). The test fails
// when another goes missing, and when one of these appears (then it
// leaves this list and the README).
var missingFlags = map[string][]string{
	"containers create": {"--apparmor-default-profile"},
	"run":               {"--apparmor-default-profile"},
}

var (
	helpFlagRE    = regexp.MustCompile(`(?m)^\s+(--[a-z0-9-]+)`)
	helpCommandRE = regexp.MustCompile(`^   ([a-z][a-z0-9-]*)`)
)

// helpOf parses a ctr's --help for a command: its flags and subcommands.
func helpOf(t *testing.T, ctr string, path []string) (flags, commands []string) {
	out, _ := runCmd(ctr, append(append([]string{}, path...), "--help")...)
	seen := map[string]bool{}
	for _, m := range helpFlagRE.FindAllStringSubmatch(out, -1) {
		if !seen[m[1]] && m[1] != "--help" {
			seen[m[1]] = true
			flags = append(flags, m[1])
		}
	}
	inCommands := false
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(line, "COMMANDS:"):
			inCommands = true
		case inCommands && line != "" && !strings.HasPrefix(line, " "):
			inCommands = false
		case inCommands:
			if m := helpCommandRE.FindStringSubmatch(line); m != nil && m[1] != "help" {
				commands = append(commands, strings.TrimSuffix(m[1], ","))
			}
		}
	}
	return flags, commands
}

// TestCtrFlagsMatchContainerd walks every command of Debian's ctr and
// checks ours has the command and each of its flags.
func TestCtrFlagsMatchContainerd(t *testing.T) {
	requireBinary(t, "/usr/bin/ctr")
	ours := filepath.Join(binDir, "ctr")
	walked, flagsSeen := 0, 0
	var walk func(path []string)
	walk = func(path []string) {
		theirFlags, theirCommands := helpOf(t, "/usr/bin/ctr", path)
		walked++
		flagsSeen += len(theirFlags)
		ourFlags, _ := helpOf(t, ours, path)
		have := map[string]bool{}
		for _, f := range ourFlags {
			have[f] = true
		}
		name := strings.Join(path, " ")
		known := map[string]bool{}
		for _, f := range missingFlags[name] {
			known[f] = true
		}
		var missing []string
		for _, f := range theirFlags {
			if !have[f] && !known[f] {
				missing = append(missing, f)
			}
		}
		for f := range known {
			if have[f] {
				t.Errorf("ctr %s: %s is listed as missing but is there now", name, f)
			}
		}
		sort.Strings(missing)
		if len(missing) > 0 {
			t.Errorf("ctr %s: missing %s", name, strings.Join(missing, " "))
		}
		if len(path) > 0 {
			if out, _ := runCmd(ours, append(append([]string{}, path...), "--help")...); !strings.Contains(out, "   ctr "+name+" ") {
				t.Errorf("ctr %s: no such command:\n%s", name, out)
			}
		}
		for _, c := range theirCommands {
			walk(append(append([]string{}, path...), c))
		}
	}
	walk(nil)
	// A help format this parser no longer reads would pass vacuously.
	if walked < 60 || flagsSeen < 200 {
		t.Fatalf("walked %d commands and %d flags of Debian's ctr: its help was not parsed", walked, flagsSeen)
	}
}
