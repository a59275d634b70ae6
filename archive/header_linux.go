package archive

import (
	"archive/tar"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// header describes the node name in the directory dirfd, whose lstat is st,
// as a tar header named rel. Owner names are left empty and access times
// out, so the same tree always gives the same bytes.
func header(dirfd int, name, rel string, st *unix.Stat_t) (*tar.Header, error) {
	hdr := &tar.Header{
		Name:    rel,
		Mode:    int64(st.Mode & 0o7777),
		Uid:     int(st.Uid),
		Gid:     int(st.Gid),
		ModTime: time.Unix(st.Mtim.Sec, st.Mtim.Nsec),
		Format:  tar.FormatPAX,
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		hdr.Typeflag = tar.TypeReg
		hdr.Size = st.Size
	case unix.S_IFDIR:
		hdr.Typeflag = tar.TypeDir
		hdr.Name += "/"
	case unix.S_IFLNK:
		hdr.Typeflag = tar.TypeSymlink
		target, err := readlinkat(dirfd, name)
		if err != nil {
			return nil, fmt.Errorf("read symlink %q: %w", rel, err)
		}
		hdr.Linkname = target
	case unix.S_IFCHR, unix.S_IFBLK:
		hdr.Typeflag = tar.TypeChar
		if st.Mode&unix.S_IFMT == unix.S_IFBLK {
			hdr.Typeflag = tar.TypeBlock
		}
		hdr.Devmajor = int64(unix.Major(uint64(st.Rdev)))
		hdr.Devminor = int64(unix.Minor(uint64(st.Rdev)))
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
	default:
		return nil, errSkip // sockets have no tar form
	}
	xattrs, err := readXattrs(procPath(dirfd, name))
	if err != nil {
		return nil, fmt.Errorf("read xattrs of %q: %w", rel, err)
	}
	if len(xattrs) > 0 {
		hdr.PAXRecords = make(map[string]string, len(xattrs))
		for k, v := range xattrs {
			hdr.PAXRecords[paxXattrPrefix+k] = v
		}
	}
	return hdr, nil
}

var errSkip = errors.New("no tar form")

// readXattrs reads the xattrs a layer should carry from path (not
// following a final symlink). trusted.overlay.* is overlayfs's own state
// and security.selinux a host-specific label; neither belongs in a layer.
func readXattrs(path string) (map[string]string, error) {
	names, err := listXattrs(path)
	if err != nil || len(names) == 0 {
		return nil, err
	}
	out := make(map[string]string, len(names))
	for _, n := range names {
		if strings.HasPrefix(n, "trusted.overlay.") || n == "security.selinux" {
			continue
		}
		v, err := getXattr(path, n)
		if errors.Is(err, unix.ENODATA) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("get %q: %w", n, err)
		}
		out[n] = string(v)
	}
	return out, nil
}

func listXattrs(path string) ([]string, error) {
	size, err := unix.Llistxattr(path, nil)
	for err == nil && size > 0 {
		buf := make([]byte, size)
		var n int
		n, err = unix.Llistxattr(path, buf)
		if errors.Is(err, unix.ERANGE) {
			size, err = unix.Llistxattr(path, nil)
			continue
		}
		if err != nil {
			break
		}
		var names []string
		for _, n := range strings.Split(string(buf[:n]), "\x00") {
			if n != "" {
				names = append(names, n)
			}
		}
		sort.Strings(names)
		return names, nil
	}
	if errors.Is(err, unix.ENOTSUP) {
		return nil, nil
	}
	return nil, err
}

func getXattr(path, name string) ([]byte, error) {
	for {
		size, err := unix.Lgetxattr(path, name, nil)
		if err != nil {
			return nil, err
		}
		buf := make([]byte, size)
		n, err := unix.Lgetxattr(path, name, buf)
		if errors.Is(err, unix.ERANGE) {
			continue // grew meanwhile
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}
