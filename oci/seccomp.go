package oci

import (
	"context"
	"runtime"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// WithDefaultSeccomp installs Berth's default seccomp profile: everything
// not listed fails with EPERM. The allow list covers what ordinary
// programs (shells, language runtimes, servers, package managers) use. It
// is deliberately smaller than Docker's profile: no capability-dependent
// extras, no kernel-module, BPF, perf, keyring, mount, reboot, clock-setting
// or io_uring calls, and clone may not create namespaces. Run privileged
// workloads without it (WithPrivileged removes it).
func WithDefaultSeccomp() SpecOpts {
	return func(_ context.Context, _ *ContainerInfo, s *specs.Spec) error {
		ensureLinux(s)
		s.Linux.Seccomp = DefaultSeccompProfile()
		return nil
	}
}

// WithSeccompUnconfined removes any seccomp profile.
func WithSeccompUnconfined(_ context.Context, _ *ContainerInfo, s *specs.Spec) error {
	ensureLinux(s)
	s.Linux.Seccomp = nil
	return nil
}

const (
	errnoEPERM  uint = 1
	errnoENOSYS uint = 38
	// cloneNamespaceFlags is CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|
	// NEWPID|NEWNET: clone may run only when none of them is set.
	cloneNamespaceFlags uint64 = 0x7E020000
)

// allowedSyscalls is the profile's unconditional allow list. Names unknown
// on an architecture are ignored by libseccomp, so 32-bit variants can
// share the list.
var allowedSyscalls = []string{
	// files and directories
	"access", "chdir", "chmod", "chown", "chown32", "close", "close_range",
	"copy_file_range", "creat", "dup", "dup2", "dup3", "faccessat",
	"faccessat2", "fadvise64", "fadvise64_64", "fallocate", "fchdir",
	"fchmod", "fchmodat", "fchmodat2", "fchown", "fchown32", "fchownat",
	"fcntl", "fcntl64", "fdatasync", "fgetxattr", "flistxattr", "flock",
	"fremovexattr", "fsetxattr", "fstat", "fstat64", "fstatat64", "fstatfs",
	"fstatfs64", "fsync", "ftruncate", "ftruncate64", "getcwd", "getdents",
	"getdents64", "getxattr", "inotify_add_watch", "inotify_init",
	"inotify_init1", "inotify_rm_watch", "lchown", "lchown32", "lgetxattr",
	"link", "linkat", "listxattr", "llistxattr", "_llseek", "lremovexattr",
	"lseek", "lsetxattr", "lstat", "lstat64", "mkdir", "mkdirat", "mknod",
	"mknodat", "newfstatat", "open", "openat", "openat2", "pread64",
	"preadv", "preadv2", "pwrite64", "pwritev", "pwritev2", "read",
	"readahead", "readlink", "readlinkat", "readv", "removexattr", "rename",
	"renameat", "renameat2", "rmdir", "sendfile", "sendfile64", "setxattr",
	"splice", "stat", "stat64", "statfs", "statfs64", "statx", "symlink",
	"symlinkat", "sync", "sync_file_range", "syncfs", "tee", "truncate",
	"truncate64", "umask", "unlink", "unlinkat", "utime", "utimensat",
	"utimensat_time64", "utimes", "write", "writev",
	// memory
	"brk", "madvise", "membarrier", "memfd_create", "mincore", "mlock",
	"mlock2", "mlockall", "mmap", "mmap2", "mprotect", "mremap", "msync",
	"munlock", "munlockall", "munmap", "remap_file_pages",
	// processes, threads, signals
	"arch_prctl", "capget", "capset", "chroot", "execve", "execveat", "exit",
	"exit_group", "fork", "futex", "futex_time64", "futex_waitv", "getcpu",
	"getegid", "getegid32", "geteuid", "geteuid32", "getgid", "getgid32",
	"getgroups", "getgroups32", "getpgid", "getpgrp", "getpid", "getppid",
	"getpriority", "getresgid", "getresgid32", "getresuid", "getresuid32",
	"getrlimit", "get_robust_list", "getrusage", "getsid", "get_thread_area",
	"gettid", "getuid", "getuid32", "ioprio_get", "ioprio_set", "kill",
	"pidfd_getfd", "pidfd_open", "pidfd_send_signal", "prctl", "prlimit64",
	"rseq", "rt_sigaction", "rt_sigpending", "rt_sigprocmask",
	"rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait",
	"rt_sigtimedwait_time64", "rt_tgsigqueueinfo", "sched_getaffinity",
	"sched_getattr", "sched_getparam", "sched_get_priority_max",
	"sched_get_priority_min", "sched_getscheduler", "sched_rr_get_interval",
	"sched_rr_get_interval_time64", "sched_setaffinity", "sched_setattr",
	"sched_setparam", "sched_setscheduler", "sched_yield", "seccomp",
	"setfsgid", "setfsgid32", "setfsuid", "setfsuid32", "setgid", "setgid32",
	"setgroups", "setgroups32", "setpgid", "setpriority", "setregid",
	"setregid32", "setresgid", "setresgid32", "setresuid", "setresuid32",
	"setreuid", "setreuid32", "setrlimit", "set_robust_list", "setsid",
	"set_thread_area", "set_tid_address", "setuid", "setuid32", "sigaltstack",
	"sigreturn", "tgkill", "tkill", "ugetrlimit", "vfork", "wait4", "waitid",
	"waitpid",
	// time and timers
	"alarm", "clock_getres", "clock_getres_time64", "clock_gettime",
	"clock_gettime64", "clock_nanosleep", "clock_nanosleep_time64",
	"getitimer", "gettimeofday", "nanosleep", "setitimer", "time",
	"timer_create", "timer_delete", "timer_getoverrun", "timer_gettime",
	"timer_gettime64", "timer_settime", "timer_settime64", "timerfd_create",
	"timerfd_gettime", "timerfd_gettime64", "timerfd_settime",
	"timerfd_settime64", "times",
	// polling, events, pipes, ipc
	"epoll_create", "epoll_create1", "epoll_ctl", "epoll_pwait",
	"epoll_pwait2", "epoll_wait", "eventfd", "eventfd2", "io_cancel",
	"io_destroy", "io_getevents", "io_pgetevents", "io_pgetevents_time64",
	"io_setup", "io_submit", "ioctl", "ipc", "mq_getsetattr", "mq_notify",
	"mq_open", "mq_timedreceive", "mq_timedreceive_time64", "mq_timedsend",
	"mq_timedsend_time64", "mq_unlink", "msgctl", "msgget", "msgrcv",
	"msgsnd", "pause", "pipe", "pipe2", "poll", "ppoll", "ppoll_time64",
	"pselect6", "pselect6_time64", "_newselect", "select", "semctl",
	"semget", "semop", "semtimedop", "semtimedop_time64", "shmat", "shmctl",
	"shmdt", "shmget", "signalfd", "signalfd4", "vmsplice",
	// sockets
	"accept", "accept4", "bind", "connect", "getpeername", "getsockname",
	"getsockopt", "listen", "recv", "recvfrom", "recvmmsg",
	"recvmmsg_time64", "recvmsg", "send", "sendmmsg", "sendmsg", "sendto",
	"setsockopt", "shutdown", "socket", "socketcall", "socketpair",
	// system information
	"getrandom", "restart_syscall", "sysinfo", "uname",
}

// DefaultSeccompProfile returns a fresh copy of the default profile for
// the architecture Berth was built for.
func DefaultSeccompProfile() *specs.LinuxSeccomp {
	eperm, enosys := errnoEPERM, errnoENOSYS
	cloneFlagsArg := uint(0)
	if runtime.GOARCH == "s390x" {
		cloneFlagsArg = 1 // s390 swaps clone's first two arguments
	}
	return &specs.LinuxSeccomp{
		DefaultAction:   specs.ActErrno,
		DefaultErrnoRet: &eperm,
		Architectures:   seccompArches(),
		Syscalls: []specs.LinuxSyscall{
			{Names: append([]string(nil), allowedSyscalls...), Action: specs.ActAllow},
			{
				// Only the personalities programs ask for in practice:
				// PER_LINUX, PER_LINUX32, UNAME26 and the query value.
				Names:  []string{"personality"},
				Action: specs.ActAllow,
				Args:   []specs.LinuxSeccompArg{{Index: 0, Value: 0x0, Op: specs.OpEqualTo}},
			},
			{Names: []string{"personality"}, Action: specs.ActAllow,
				Args: []specs.LinuxSeccompArg{{Index: 0, Value: 0x8, Op: specs.OpEqualTo}}},
			{Names: []string{"personality"}, Action: specs.ActAllow,
				Args: []specs.LinuxSeccompArg{{Index: 0, Value: 0x20000, Op: specs.OpEqualTo}}},
			{Names: []string{"personality"}, Action: specs.ActAllow,
				Args: []specs.LinuxSeccompArg{{Index: 0, Value: 0xffffffff, Op: specs.OpEqualTo}}},
			{
				// Threads and fork, but no new namespaces.
				Names:  []string{"clone"},
				Action: specs.ActAllow,
				Args: []specs.LinuxSeccompArg{{
					Index: cloneFlagsArg, Value: cloneNamespaceFlags, ValueTwo: 0, Op: specs.OpMaskedEqual,
				}},
			},
			{
				// clone3 passes its flags in memory seccomp cannot
				// inspect; ENOSYS makes libc fall back to clone.
				Names:    []string{"clone3"},
				Action:   specs.ActErrno,
				ErrnoRet: &enosys,
			},
		},
	}
}

// seccompArches lists the native architecture and the compat ones a
// process on it can switch to.
func seccompArches() []specs.Arch {
	switch runtime.GOARCH {
	case "amd64":
		return []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32}
	case "386":
		return []specs.Arch{specs.ArchX86}
	case "arm64":
		return []specs.Arch{specs.ArchAARCH64, specs.ArchARM}
	case "arm":
		return []specs.Arch{specs.ArchARM}
	case "ppc64le":
		return []specs.Arch{specs.ArchPPC64LE}
	case "s390x":
		return []specs.Arch{specs.ArchS390X, specs.ArchS390}
	case "riscv64":
		return []specs.Arch{specs.ArchRISCV64}
	}
	return nil
}
