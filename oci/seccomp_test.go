package oci

import (
	"encoding/json"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestDefaultSeccomp(t *testing.T) {
	s := genSpec(t, WithDefaultSeccomp())
	sc := s.Linux.Seccomp
	if sc == nil || sc.DefaultAction != specs.ActErrno || sc.DefaultErrnoRet == nil || *sc.DefaultErrnoRet != 1 {
		t.Fatalf("profile %+v", sc)
	}
	if len(sc.Architectures) == 0 {
		t.Errorf("no architectures")
	}
	allowed := map[string]bool{}
	for _, name := range sc.Syscalls[0].Names {
		if allowed[name] {
			t.Errorf("%s listed twice", name)
		}
		allowed[name] = true
	}
	for _, must := range []string{"read", "write", "execve", "openat", "exit_group", "futex", "epoll_wait", "socket", "wait4"} {
		if !allowed[must] {
			t.Errorf("%s not allowed", must)
		}
	}
	for _, never := range []string{"mount", "umount2", "reboot", "init_module", "kexec_load", "bpf", "ptrace",
		"unshare", "setns", "keyctl", "clone", "clone3", "personality", "io_uring_setup", "settimeofday"} {
		if allowed[never] {
			t.Errorf("%s allowed unconditionally", never)
		}
	}
	var clone *specs.LinuxSyscall
	for i := range sc.Syscalls {
		if sc.Syscalls[i].Names[0] == "clone" {
			clone = &sc.Syscalls[i]
		}
	}
	if clone == nil || len(clone.Args) != 1 || clone.Args[0].Op != specs.OpMaskedEqual || clone.Args[0].Value&0x10000000 == 0 {
		t.Fatalf("clone rule %+v must refuse CLONE_NEWUSER", clone)
	}
	if _, err := json.Marshal(sc); err != nil {
		t.Fatal(err)
	}
	// Fresh copies: changing one profile must not change the next.
	sc.Syscalls[0].Names[0] = "changed"
	if DefaultSeccompProfile().Syscalls[0].Names[0] == "changed" {
		t.Fatal("profiles share the allow list")
	}
}
