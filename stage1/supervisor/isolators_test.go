package supervisor

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/elastic/go-seccomp-bpf/arch"

	"rkt.dev/rkt/stage1/seccompfilter"
)

func TestIsolators(t *testing.T) {
	root := busyboxRoot(t)
	s, err := New()
	must(t, err)
	base, err := OwnCgroups()
	must(t, err)
	mem, ok := hierarchyFor(base, "memory")
	if !ok {
		t.Fatal("no memory cgroup controller on this host")
	}
	memFile := "memory.limit_in_bytes"
	if mem.Unified {
		memFile = "memory.max"
	}
	oom := 500
	cases := []struct {
		name    string
		system  SystemMounts
		iso     Isolators
		user    string
		script  string
		wantOut string
	}{
		{"capabilities of root", PrivateSystemMounts, Isolators{Capabilities: []string{"CAP_NET_BIND_SERVICE", "kill"}}, "",
			"busybox grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb)' /proc/self/status | busybox tr -d '\\t\\n'",
			"CapInh:0000000000000420CapPrm:0000000000000420CapEff:0000000000000420CapBnd:0000000000000420CapAmb:0000000000000000"},
		{"no capabilities for other users", PrivateSystemMounts, Isolators{Capabilities: []string{"CAP_KILL"}}, "1000",
			"busybox grep -E '^Cap(Prm|Eff|Bnd)' /proc/self/status | busybox tr -d '\\t\\n'",
			"CapPrm:0000000000000000CapEff:0000000000000000CapBnd:0000000000000020"},
		{"no-new-privileges", PrivateSystemMounts, Isolators{NoNewPrivileges: true}, "",
			"busybox grep NoNewPrivs /proc/self/status", "NoNewPrivs:\t1\n"},
		{"seccomp remove set with errno", PrivateSystemMounts, Isolators{Capabilities: []string{"CAP_KILL"}, Seccomp: seccompOf(t, SeccompRemove, []string{"mkdir", "mkdirat"}, "EROFS")}, "",
			"busybox mkdir /tmp/d 2>&1; busybox grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status | busybox tr -d '\\t\\n'",
			"mkdir: can't create directory '/tmp/d': Read-only file system\nNoNewPrivs:0Seccomp:2"},
		{"seccomp for other users sets no-new-privileges", PrivateSystemMounts, Isolators{Seccomp: seccompOf(t, SeccompRemove, seccompfilter.DefaultBlocklist, "")}, "1000",
			"busybox grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status | busybox tr -d '\\t\\n'", "NoNewPrivs:1Seccomp:2"},
		{"default seccomp profile refuses unshare", PrivateSystemMounts, Isolators{Seccomp: seccompOf(t, SeccompRemove, seccompfilter.DefaultBlocklist, "")}, "",
			"busybox unshare -m true 2>/dev/null || echo refused", "refused\n"},
		{"seccomp retain set", PrivateSystemMounts, Isolators{Seccomp: seccompOf(t, SeccompRetain, allSyscallsBut(t, "mkdir", "mkdirat"), "")}, "",
			"busybox mkdir /tmp/d 2>&1; echo alive", "mkdir: can't create directory '/tmp/d': Operation not permitted\nalive\n"},
		{"oom-score-adj", PrivateSystemMounts, Isolators{OOMScoreAdj: &oom}, "", "busybox cat /proc/self/oom_score_adj", "500\n"},
		{"masked /proc", PrivateSystemMounts, Isolators{MaskKernelPaths: true}, "",
			"busybox awk '$5 ~ \"^/proc/\" {print $5, substr($6,1,2)}' /proc/self/mountinfo", maskedMounts(t)},
		{"memory limit in an own cgroup", HostSystemMounts, Isolators{MemoryLimit: 64 << 20, Cgroup: "rkt-test/limits"}, "",
			"busybox cat " + filepath.Join(mem.Dir, "rkt-test/limits", memFile), fmt.Sprintf("%d\n", 64<<20)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out syncBuffer
			app := App{Name: "iso", Root: root, Exec: []string{"/bin/sh", "-c", tc.script}, System: tc.system,
				Isolators: tc.iso, User: tc.user, Group: tc.user, Stdout: &out, Stderr: &out}
			p, err := s.Start(app)
			must(t, err)
			if st := p.Wait(); st.Code != 0 {
				t.Errorf("exit code %d, output %q", st.Code, out.String())
			}
			if out.String() != tc.wantOut {
				t.Errorf("output %q, want %q", out.String(), tc.wantOut)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(mem.Dir, "rkt-test")); !os.IsNotExist(err) {
		t.Errorf("the app's cgroup was not removed after it exited: %v", err)
	}
}

// maskedMounts is what the masked /proc case sees in its mountinfo: one
// mount per masked path the host kernel has, read-only except the
// /dev/null binds over files.
func maskedMounts(t *testing.T) string {
	var b strings.Builder
	for _, m := range maskedPaths {
		fi, err := os.Stat(m.path)
		if err != nil {
			continue
		}
		mode := "ro"
		if m.hidden && !fi.IsDir() {
			mode = "rw"
		}
		fmt.Fprintf(&b, "%s %s\n", m.path, mode)
	}
	if b.Len() == 0 {
		t.Skip("the kernel has none of the masked /proc paths")
	}
	return b.String()
}

// allSyscallsBut lists every system call of the architecture but some.
// seccompOf is a filter compiled as stage1 compiles it for the supervisor.
func seccompOf(t *testing.T, mode SeccompMode, syscalls []string, errno string) *Seccomp {
	t.Helper()
	filter, capset, err := seccompfilter.Compile(string(mode), syscalls, errno)
	must(t, err)
	return &Seccomp{Mode: mode, Syscalls: syscalls, Errno: errno, Filter: filter, CapsetFilter: capset}
}

func allSyscallsBut(t *testing.T, except ...string) []string {
	info, err := arch.GetInfo("")
	must(t, err)
	var names []string
	for n := range info.SyscallNames {
		if !slices.Contains(except, n) {
			names = append(names, n)
		}
	}
	return names
}

func TestIsolatorErrors(t *testing.T) {
	root := busyboxRoot(t)
	s, err := New()
	must(t, err)
	bad := 2000
	cases := []struct {
		name string
		iso  Isolators
		want string
	}{
		{"unknown capability", Isolators{Capabilities: []string{"CAP_FLY"}}, `unknown capability "CAP_FLY"`},
		{"seccomp not compiled", Isolators{Seccomp: &Seccomp{Mode: SeccompRemove, Syscalls: []string{"mkdir"}}}, "the remove filter was not compiled"},
		{"bad mode", Isolators{Seccomp: &Seccomp{Mode: "drop", Syscalls: []string{"mkdir"}}}, "neither retain nor remove"},
		{"oom out of range", Isolators{OOMScoreAdj: &bad}, "outside -1000..1000"},
		{"limit without cgroup", Isolators{MemoryLimit: 1 << 20}, "need a cgroup name"},
		{"escaping cgroup", Isolators{MemoryLimit: 1 << 20, Cgroup: "../x"}, "need a cgroup name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Start(App{Name: "e", Root: root, Exec: []string{"/bin/sh"}, System: PrivateSystemMounts, Isolators: tc.iso})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}
