package archive

import (
	"context"
	"fmt"
	"io"
	"sort"

	"golang.org/x/sys/unix"
)

// WriteDiff writes to w an OCI layer tar that turns the tree lower into the
// tree upper when applied onto it: nodes added or changed in upper, with
// the parent directories of each so their metadata is restated, and a
// ".wh.NAME" whiteout for each node of lower missing from upper (one for a
// whole removed directory). Entries come in byte order of their names and
// hardlinks among written files are kept.
//
// A node counts as changed when its type, mode, owner, size, mtime, link
// target or device number differ; a regular file whose mtime has no
// sub-second part (typical of trees unpacked from tar) is also compared byte
// by byte, since a second-granular mtime can hide a rewrite. Changes only to
// xattrs are not detected.
func WriteDiff(ctx context.Context, w io.Writer, lower, upper string) error {
	lr, err := openRoot(lower)
	if err != nil {
		return fmt.Errorf("write diff: lower: %w", err)
	}
	defer lr.close()
	ur, err := openRoot(upper)
	if err != nil {
		return fmt.Errorf("write diff: upper: %w", err)
	}
	defer ur.close()
	d := &differ{tarWriter: newTarWriter(ctx, w)}
	defer d.release()
	if err := d.diffDir(lr.fd, ur.fd, ""); err != nil {
		return fmt.Errorf("write diff of %q and %q: %w", lower, upper, err)
	}
	if err := d.tw.Close(); err != nil {
		return fmt.Errorf("write diff of %q and %q: %w", lower, upper, err)
	}
	return nil
}

type differ struct {
	*tarWriter
	// parents are the directories present in both trees on the way down
	// to the current one; each is written the first time something below
	// it is, so an applier recreates it with upper's metadata.
	parents []parentDir
	cmpBuf  []byte
}

type parentDir struct {
	dirfd   int // upper directory holding it
	name    string
	rel     string
	st      unix.Stat_t
	written bool
}

// flushParents writes the pending parent directories.
func (d *differ) flushParents() error {
	for i := range d.parents {
		p := &d.parents[i]
		if p.written {
			continue
		}
		if err := d.writeNode(p.dirfd, p.name, p.rel, &p.st); err != nil {
			return err
		}
		p.written = true
	}
	return nil
}

// diffDir compares the directories lfd and ufd, both named rel.
func (d *differ) diffDir(lfd, ufd int, rel string) error {
	if err := d.ctx.Err(); err != nil {
		return err
	}
	lnames, err := sortedNames(lfd)
	if err != nil {
		return fmt.Errorf("list lower %q: %w", rel, err)
	}
	unames, err := sortedNames(ufd)
	if err != nil {
		return fmt.Errorf("list upper %q: %w", rel, err)
	}
	for i, j := 0, 0; i < len(lnames) || j < len(unames); {
		switch {
		case j == len(unames) || i < len(lnames) && lnames[i] < unames[j]:
			// Only in lower: removed.
			if err := d.flushParents(); err != nil {
				return err
			}
			if err := d.writeWhiteout(joinName(rel, lnames[i])); err != nil {
				return err
			}
			i++
		case i == len(lnames) || unames[j] < lnames[i]:
			// Only in upper: added, with everything below it.
			name := unames[j]
			var st unix.Stat_t
			if err := unix.Fstatat(ufd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return fmt.Errorf("stat upper %q: %w", joinName(rel, name), err)
			}
			if err := d.flushParents(); err != nil {
				return err
			}
			if err := d.addNode(ufd, name, joinName(rel, name), &st); err != nil {
				return err
			}
			j++
		default:
			if err := d.diffNode(lfd, ufd, lnames[i], joinName(rel, lnames[i])); err != nil {
				return err
			}
			i++
			j++
		}
	}
	return nil
}

// diffNode compares a name present in both trees.
func (d *differ) diffNode(lfd, ufd int, name, rel string) error {
	var lst, ust unix.Stat_t
	if err := unix.Fstatat(lfd, name, &lst, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("stat lower %q: %w", rel, err)
	}
	if err := unix.Fstatat(ufd, name, &ust, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("stat upper %q: %w", rel, err)
	}
	if lst.Mode&unix.S_IFMT == unix.S_IFDIR && ust.Mode&unix.S_IFMT == unix.S_IFDIR {
		d.parents = append(d.parents, parentDir{dirfd: ufd, name: name, rel: rel, st: ust})
		defer func() { d.parents = d.parents[:len(d.parents)-1] }()
		if !sameMeta(&lst, &ust) {
			if err := d.flushParents(); err != nil {
				return err
			}
		}
		lcfd, err := unix.Openat(lfd, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open lower %q: %w", rel, err)
		}
		defer unix.Close(lcfd)
		ucfd, err := unix.Openat(ufd, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open upper %q: %w", rel, err)
		}
		defer unix.Close(ucfd)
		return d.diffDir(lcfd, ucfd, rel)
	}
	same, err := d.sameNode(lfd, ufd, name, &lst, &ust)
	if err != nil {
		return fmt.Errorf("compare %q: %w", rel, err)
	}
	if same {
		return nil
	}
	// Changed, or changed type: the new node replaces the old one (Apply
	// removes a directory an entry of another type lands on).
	if err := d.flushParents(); err != nil {
		return err
	}
	return d.addNode(ufd, name, rel, &ust)
}

// sameMeta compares what a tar header carries for any node type.
func sameMeta(a, b *unix.Stat_t) bool {
	return a.Mode == b.Mode && a.Uid == b.Uid && a.Gid == b.Gid &&
		a.Mtim.Sec == b.Mtim.Sec && a.Mtim.Nsec == b.Mtim.Nsec
}

// sameNode reports whether a non-directory node is unchanged.
func (d *differ) sameNode(lfd, ufd int, name string, lst, ust *unix.Stat_t) (bool, error) {
	if lst.Mode != ust.Mode || lst.Uid != ust.Uid || lst.Gid != ust.Gid {
		return false, nil
	}
	switch ust.Mode & unix.S_IFMT {
	case unix.S_IFLNK:
		lt, err := readlinkat(lfd, name)
		if err != nil {
			return false, err
		}
		ut, err := readlinkat(ufd, name)
		if err != nil {
			return false, err
		}
		return lt == ut, nil
	case unix.S_IFCHR, unix.S_IFBLK:
		return lst.Rdev == ust.Rdev && sameMeta(lst, ust), nil
	case unix.S_IFREG:
		if lst.Size != ust.Size || !sameMeta(lst, ust) {
			return false, nil
		}
		if ust.Mtim.Nsec != 0 || ust.Size == 0 {
			return true, nil
		}
		if d.cmpBuf == nil {
			d.cmpBuf = make([]byte, copyBufSize)
		}
		return sameContent(lfd, name, ufd, name, ust.Size, d.cmpBuf, *d.bufp)
	}
	return sameMeta(lst, ust), nil
}

func sortedNames(fd int) ([]string, error) {
	names, err := readDirNames(fd)
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	return names, nil
}
