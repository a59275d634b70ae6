package mount

import (
	"strings"

	"golang.org/x/sys/unix"
)

// flagOption is what one fstab-style option does to the mount flags.
type flagOption struct {
	clear bool // the option removes the flag ("rw" clears MS_RDONLY)
	flag  uintptr
}

var flagOptions = map[string]flagOption{
	"async":         {true, unix.MS_SYNCHRONOUS},
	"atime":         {true, unix.MS_NOATIME},
	"bind":          {false, unix.MS_BIND},
	"defaults":      {false, 0},
	"dev":           {true, unix.MS_NODEV},
	"diratime":      {true, unix.MS_NODIRATIME},
	"dirsync":       {false, unix.MS_DIRSYNC},
	"exec":          {true, unix.MS_NOEXEC},
	"mand":          {false, unix.MS_MANDLOCK},
	"noatime":       {false, unix.MS_NOATIME},
	"nodev":         {false, unix.MS_NODEV},
	"nodiratime":    {false, unix.MS_NODIRATIME},
	"noexec":        {false, unix.MS_NOEXEC},
	"nomand":        {true, unix.MS_MANDLOCK},
	"norelatime":    {true, unix.MS_RELATIME},
	"nostrictatime": {true, unix.MS_STRICTATIME},
	"nosuid":        {false, unix.MS_NOSUID},
	"rbind":         {false, unix.MS_BIND | unix.MS_REC},
	"relatime":      {false, unix.MS_RELATIME},
	"remount":       {false, unix.MS_REMOUNT},
	"ro":            {false, unix.MS_RDONLY},
	"rw":            {true, unix.MS_RDONLY},
	"strictatime":   {false, unix.MS_STRICTATIME},
	"suid":          {true, unix.MS_NOSUID},
	"sync":          {false, unix.MS_SYNCHRONOUS},
}

// Propagation changes need a mount call of their own, after the mount.
var propagationOptions = map[string]uintptr{
	"private":     unix.MS_PRIVATE,
	"rprivate":    unix.MS_PRIVATE | unix.MS_REC,
	"shared":      unix.MS_SHARED,
	"rshared":     unix.MS_SHARED | unix.MS_REC,
	"slave":       unix.MS_SLAVE,
	"rslave":      unix.MS_SLAVE | unix.MS_REC,
	"unbindable":  unix.MS_UNBINDABLE,
	"runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
}

// parsedOptions splits Mount.Options into what mount(2) takes.
type parsedOptions struct {
	flags       uintptr  // MS_* flags for the mount itself
	propagation uintptr  // MS_PRIVATE etc., applied afterwards
	data        []string // options for the file system ("lowerdir=...")
}

// parseOptions sorts options into flags, propagation and file system data.
// Options starting with "x-" are userspace annotations (as in fstab) and
// are dropped; anything unknown goes to the file system, which judges it.
func parseOptions(options []string) parsedOptions {
	var p parsedOptions
	for _, o := range options {
		if f, ok := flagOptions[o]; ok {
			if f.clear {
				p.flags &^= f.flag
			} else {
				p.flags |= f.flag
			}
			continue
		}
		if f, ok := propagationOptions[o]; ok {
			p.propagation |= f
			continue
		}
		if strings.HasPrefix(o, "x-") {
			continue
		}
		p.data = append(p.data, o)
	}
	return p
}
