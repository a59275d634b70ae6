package oci

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"strings"

	"github.com/berth-containers/berth/pkg/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// userRef is a parsed --user value: a user and optionally a group, each
// either numeric or a name to look up in the container's rootfs.
type userRef struct {
	name       string
	uid        uint32
	uidNumeric bool

	hasGroup   bool
	group      string
	gid        uint32
	gidNumeric bool
}

func (r userRef) String() string {
	u := r.name
	if r.uidNumeric {
		u = fmt.Sprint(r.uid)
	}
	if !r.hasGroup {
		return u
	}
	if r.gidNumeric {
		return fmt.Sprintf("%s:%d", u, r.gid)
	}
	return u + ":" + r.group
}

// parseUserString accepts "uid", "uid:gid", "name", "name:group",
// "uid:group" and "name:gid"; all-digit parts are IDs, as in runc.
func parseUserString(str string) (userRef, error) {
	var r userRef
	invalid := func(why string) (userRef, error) {
		return userRef{}, fmt.Errorf("user %q: %s: %w", str, why, errdefs.ErrInvalidArgument)
	}
	u, g, hasGroup := strings.Cut(str, ":")
	if u == "" || strings.ContainsAny(str, "\x00\n") {
		return invalid("want uid, uid:gid, name or name:group")
	}
	if hasGroup && (g == "" || strings.Contains(g, ":")) {
		return invalid("want uid, uid:gid, name or name:group")
	}
	if isDigits(u) {
		id, err := parseID(u)
		if err != nil {
			return invalid(fmt.Sprintf("uid must be at most %d", math.MaxInt32))
		}
		r.uid, r.uidNumeric = id, true
	} else {
		r.name = u
	}
	if hasGroup {
		r.hasGroup = true
		if isDigits(g) {
			id, err := parseID(g)
			if err != nil {
				return invalid(fmt.Sprintf("gid must be at most %d", math.MaxInt32))
			}
			r.gid, r.gidNumeric = id, true
		} else {
			r.group = g
		}
	}
	return r, nil
}

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

// WithUser sets the process's user and groups from "uid", "uid:gid",
// "name", "name:group", "uid:group" or "name:gid". Names are resolved
// through the container's /etc/passwd and /etc/group (ContainerInfo.Rootfs);
// a numeric uid without a group takes its primary gid from /etc/passwd, or 0
// when the user or the file is missing. Supplementary groups are the
// primary gid plus every /etc/group entry listing the user.
func WithUser(userstr string) SpecOpts {
	return func(ctx context.Context, c *ContainerInfo, s *specs.Spec) error {
		ref, err := parseUserString(userstr)
		if err != nil {
			return err
		}
		return setUser(ctx, c, s, ref)
	}
}

// WithUserID sets the process's user to uid, with its primary and
// supplementary groups from the rootfs when it has an entry there.
func WithUserID(uid uint32) SpecOpts {
	return func(ctx context.Context, c *ContainerInfo, s *specs.Spec) error {
		if uid > math.MaxInt32 {
			return fmt.Errorf("uid %d must be at most %d: %w", uid, math.MaxInt32, errdefs.ErrInvalidArgument)
		}
		return setUser(ctx, c, s, userRef{uid: uid, uidNumeric: true})
	}
}

// WithUsername sets the process's user to the passwd entry called name.
func WithUsername(name string) SpecOpts {
	return func(ctx context.Context, c *ContainerInfo, s *specs.Spec) error {
		if name == "" || strings.ContainsAny(name, ":\x00\n") {
			return fmt.Errorf("user name %q: %w", name, errdefs.ErrInvalidArgument)
		}
		return setUser(ctx, c, s, userRef{name: name})
	}
}

func setUser(ctx context.Context, c *ContainerInfo, s *specs.Spec, ref userRef) error {
	var u specs.User
	err := withRootfs(ctx, c, func(read rootfsReader) error {
		var err error
		u, err = resolveUser(read, ref)
		return err
	})
	if err != nil {
		return err
	}
	ensureProcess(s)
	u.Umask = s.Process.User.Umask
	s.Process.User = u
	return nil
}

// rootfsReader reads a file of the container's root file system; nil when
// there is no way to reach it.
type rootfsReader func(name string) ([]byte, error)

// withRootfs runs fn with a reader of the container's rootfs, or with nil
// when the client gave no way to reach it. Layers are read in place when
// the reader handles their layout, else the rootfs is mounted.
func withRootfs(ctx context.Context, c *ContainerInfo, fn func(read rootfsReader) error) error {
	if c == nil {
		return fn(nil)
	}
	if c.Layers != nil {
		l := *c.Layers
		err := fn(func(name string) ([]byte, error) { return readLayersFile(l, name) })
		if !errors.Is(err, errLayoutUnsupported) || c.Rootfs == nil {
			return err
		}
	}
	if c.Rootfs == nil {
		return fn(nil)
	}
	return c.Rootfs(ctx, func(root string) error {
		return fn(func(name string) ([]byte, error) { return readRootfsFile(root, name) })
	})
}

// resolveUser turns ref into a spec user, reading the rootfs's passwd and
// group files when read is not nil.
func resolveUser(read rootfsReader, ref userRef) (specs.User, error) {
	users, havePasswd, err := loadRootfsTable(read, "/etc/passwd", parsePasswd)
	if err != nil {
		return specs.User{}, fmt.Errorf("user %q: %w", ref, err)
	}
	groups, haveGroup, err := loadRootfsTable(read, "/etc/group", parseGroup)
	if err != nil {
		return specs.User{}, fmt.Errorf("user %q: %w", ref, err)
	}

	var (
		name     string
		uid, gid uint32
	)
	if ref.uidNumeric {
		uid = ref.uid
		for _, e := range users {
			if e.uid == uid {
				name, gid = e.name, e.gid
				break
			}
		}
	} else {
		switch {
		case read == nil:
			return specs.User{}, fmt.Errorf("user %q: resolving a user name needs the container's root filesystem: %w", ref, errdefs.ErrFailedPrecondition)
		case !havePasswd:
			return specs.User{}, fmt.Errorf("user %q: the container has no /etc/passwd: %w", ref, errdefs.ErrNotFound)
		}
		found := false
		for _, e := range users {
			if e.name == ref.name {
				name, uid, gid, found = e.name, e.uid, e.gid, true
				break
			}
		}
		if !found {
			return specs.User{}, fmt.Errorf("user %q: no user %q in the container's /etc/passwd: %w", ref, ref.name, errdefs.ErrNotFound)
		}
	}

	if ref.hasGroup {
		if ref.gidNumeric {
			gid = ref.gid
		} else {
			switch {
			case read == nil:
				return specs.User{}, fmt.Errorf("user %q: resolving a group name needs the container's root filesystem: %w", ref, errdefs.ErrFailedPrecondition)
			case !haveGroup:
				return specs.User{}, fmt.Errorf("user %q: the container has no /etc/group: %w", ref, errdefs.ErrNotFound)
			}
			found := false
			for _, g := range groups {
				if g.name == ref.group {
					gid, found = g.gid, true
					break
				}
			}
			if !found {
				return specs.User{}, fmt.Errorf("user %q: no group %q in the container's /etc/group: %w", ref, ref.group, errdefs.ErrNotFound)
			}
		}
	}

	// The primary gid leads the supplementary list: runc's setgroups()
	// replaces the whole list, and leaving the primary group out would let
	// a process drop it to bypass group-deny permissions (CVE-2023-25173).
	additional := []uint32{gid}
	if name != "" {
		for _, g := range groups {
			if contains(g.members, name) && !containsID(additional, g.gid) {
				additional = append(additional, g.gid)
			}
		}
	}
	return specs.User{UID: uid, GID: gid, AdditionalGids: additional}, nil
}

func containsID(ids []uint32, id uint32) bool {
	for _, v := range ids {
		if v == id {
			return true
		}
	}
	return false
}

// loadRootfsTable reads and parses one of the rootfs's account files. A
// missing file is not an error (many minimal images have none); present
// reports whether it was there.
func loadRootfsTable[T any](read rootfsReader, name string, parse func([]byte) []T) (entries []T, present bool, err error) {
	if read == nil {
		return nil, false, nil
	}
	b, err := read(name)
	if err != nil {
		if errors.Is(err, errLayoutUnsupported) {
			return nil, false, err
		}
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOTDIR) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("read %s from the container's rootfs: %w", name, err)
	}
	return parse(b), true, nil
}
