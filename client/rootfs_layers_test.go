package client

import (
	"reflect"
	"testing"

	"github.com/berth-containers/berth/mount"
	"github.com/berth-containers/berth/oci"
)

func TestRootfsLayers(t *testing.T) {
	for _, tc := range []struct {
		name string
		ms   []mount.Mount
		want *oci.RootfsLayers
	}{
		{"bind", []mount.Mount{{Type: "bind", Source: "/s/1/fs", Options: []string{"ro", "rbind"}}},
			&oci.RootfsLayers{Dirs: []string{"/s/1/fs"}}},
		{"overlay active", []mount.Mount{{Type: "overlay", Source: "overlay", Options: []string{"ro", "index=off", "workdir=/s/3/work", "upperdir=/s/3/fs", "lowerdir=/s/2/fs:/s/1/fs"}}},
			&oci.RootfsLayers{Dirs: []string{"/s/3/fs", "/s/2/fs", "/s/1/fs"}, Overlay: true}},
		{"overlay view", []mount.Mount{{Type: "overlay", Source: "overlay", Options: []string{"ro", "lowerdir=/s/2/fs:/s/1/fs"}}},
			&oci.RootfsLayers{Dirs: []string{"/s/2/fs", "/s/1/fs"}, Overlay: true}},
		{"userxattr", []mount.Mount{{Type: "overlay", Options: []string{"userxattr", "lowerdir=/a:/b"}}},
			&oci.RootfsLayers{Dirs: []string{"/a", "/b"}, Overlay: true, UserXattr: true}},
		{"two mounts", []mount.Mount{{Type: "bind", Source: "/a"}, {Type: "bind", Source: "/b"}}, nil},
		{"redirect_dir", []mount.Mount{{Type: "overlay", Options: []string{"redirect_dir=on", "lowerdir=/a:/b"}}}, nil},
		{"metacopy", []mount.Mount{{Type: "overlay", Options: []string{"metacopy=on", "lowerdir=/a:/b"}}}, nil},
		{"escaped colon", []mount.Mount{{Type: "overlay", Options: []string{`lowerdir=/a\:x:/b`}}}, nil},
		{"two lowerdirs", []mount.Mount{{Type: "overlay", Options: []string{"lowerdir=/a", "lowerdir=/b"}}}, nil},
		{"new lowerdir syntax", []mount.Mount{{Type: "overlay", Options: []string{"lowerdir+=/a"}}}, nil},
		{"relative", []mount.Mount{{Type: "overlay", Options: []string{"lowerdir=a:/b"}}}, nil},
		{"empty element", []mount.Mount{{Type: "overlay", Options: []string{"lowerdir=/a::/b"}}}, nil},
		{"no lowerdir", []mount.Mount{{Type: "overlay", Options: []string{"upperdir=/u"}}}, nil},
		{"tmpfs", []mount.Mount{{Type: "tmpfs", Source: "tmpfs"}}, nil},
		{"bind relative", []mount.Mount{{Type: "bind", Source: "fs"}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := rootfsLayers(tc.ms); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
