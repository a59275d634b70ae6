package archive

import (
	"os"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// jail confines the calling goroutine's writes to base, so that a
// regression in the code under test fails with EROFS instead of changing
// the host: the goroutine is locked to its thread, the thread gets its own
// mount namespace, base is bind-mounted onto itself (writable) and the root
// mount is remounted read-only, until the test's cleanup returns the thread
// to the host's namespace (before TempDir's cleanup, which runs later as it
// was registered earlier). Everything the jailed test applies must run on
// this goroutine. Without root the jail is skipped: nothing there could
// write to the host's system files anyway.
func jail(t testing.TB, base string) {
	t.Helper()
	if os.Geteuid() != 0 {
		return
	}
	runtime.LockOSThread()
	host, err := unix.Open("/proc/thread-self/ns/mnt", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("jail: open mount namespace: %v", err)
	}
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		// Root without CAP_SYS_ADMIN (a locked-down CI container): run
		// unjailed rather than not at all.
		unix.Close(host)
		runtime.UnlockOSThread()
		t.Logf("jail: unshare mount namespace: %v; running without the jail", err)
		return
	}
	t.Cleanup(func() {
		defer unix.Close(host)
		if err := unix.Setns(host, unix.CLONE_NEWNS); err != nil {
			// Leave the thread locked: Go retires it with the goroutine.
			t.Errorf("jail: return to the host mount namespace: %v", err)
			return
		}
		runtime.UnlockOSThread()
	})
	steps := []struct {
		what                  string
		source, target, fstyp string
		flags                 uintptr
	}{
		{"make mounts private", "", "/", "", unix.MS_REC | unix.MS_PRIVATE},
		{"bind base", base, base, "", unix.MS_BIND},
		{"remount / read-only", "", "/", "", unix.MS_REMOUNT | unix.MS_BIND | unix.MS_RDONLY},
	}
	for _, s := range steps {
		if err := unix.Mount(s.source, s.target, s.fstyp, s.flags, ""); err != nil {
			t.Fatalf("jail: %s: %v", s.what, err)
		}
	}
	// Prove it: the host's root file system refuses writes now.
	if err := unix.Mkdir("/.berth-archive-jail-probe", 0o700); err != unix.EROFS {
		if err == nil {
			unix.Rmdir("/.berth-archive-jail-probe")
		}
		t.Fatalf("jail: root still writable (%v)", err)
	}
}
