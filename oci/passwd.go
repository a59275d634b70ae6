package oci

import (
	"bufio"
	"bytes"
	"math"
	"strconv"
	"strings"
)

// passwdEntry is the part of an /etc/passwd line a spec needs.
type passwdEntry struct {
	name     string
	uid, gid uint32
}

// groupEntry is one /etc/group line.
type groupEntry struct {
	name    string
	gid     uint32
	members []string
}

// parsePasswd reads passwd(5) lines, name:password:uid:gid:gecos:home:shell.
// Lines that do not parse (comments, NIS "+"/"-" entries, junk) are skipped,
// as libc does, rather than failing the whole container.
func parsePasswd(b []byte) []passwdEntry {
	var out []passwdEntry
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), maxRootfsFile)
	for sc.Scan() {
		f := strings.Split(strings.TrimSpace(sc.Text()), ":")
		if len(f) < 4 || !validEntryName(f[0]) {
			continue
		}
		uid, err1 := parseID(f[2])
		gid, err2 := parseID(f[3])
		if err1 != nil || err2 != nil {
			continue
		}
		out = append(out, passwdEntry{name: f[0], uid: uid, gid: gid})
	}
	return out
}

// parseGroup reads group(5) lines, name:password:gid:member,member.
func parseGroup(b []byte) []groupEntry {
	var out []groupEntry
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), maxRootfsFile)
	for sc.Scan() {
		f := strings.Split(strings.TrimSpace(sc.Text()), ":")
		if len(f) < 3 || !validEntryName(f[0]) {
			continue
		}
		gid, err := parseID(f[2])
		if err != nil {
			continue
		}
		g := groupEntry{name: f[0], gid: gid}
		if len(f) > 3 {
			for _, m := range strings.Split(f[3], ",") {
				if m = strings.TrimSpace(m); m != "" {
					g.members = append(g.members, m)
				}
			}
		}
		out = append(out, g)
	}
	return out
}

func validEntryName(n string) bool {
	return n != "" && !strings.HasPrefix(n, "#") && !strings.HasPrefix(n, "+") && !strings.HasPrefix(n, "-")
}

// parseID parses a uid or gid. runc refuses IDs above MaxInt32, so we do
// too, here, with a clear message instead of a failed container start.
func parseID(s string) (uint32, error) {
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, err
	}
	if v > math.MaxInt32 {
		return 0, strconv.ErrRange
	}
	return uint32(v), nil
}
