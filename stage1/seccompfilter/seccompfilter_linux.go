package seccompfilter

import (
	"fmt"
	"slices"
	"syscall"

	seccomp "github.com/elastic/go-seccomp-bpf"
	"github.com/elastic/go-seccomp-bpf/arch"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// The modes of a filter, as in stage1/supervisor.Seccomp.Mode.
const (
	// Retain allows only the listed system calls.
	Retain = "retain"
	// Remove allows everything but the listed system calls.
	Remove = "remove"
)

// DefaultBlocklist is rkt.dev's default seccomp profile, applied in
// remove mode by isolating flavors when an app asks for no filter of its
// own: the system calls that reach past a container's namespaces into the
// host kernel (modules, kexec, reboot, swap, clock, accounting, keyrings),
// that undo its isolation (mounts, namespaces, pivot_root), that inspect
// other processes (ptrace, process_vm_*, kcmp) or that widen the kernel's
// attack surface for little use in apps (bpf, perf_event_open,
// userfaultfd, handle-based opens). It is close to Docker's default
// profile, expressed as a block list so that new, harmless system calls
// keep working. Names the running architecture does not have are skipped.
var DefaultBlocklist = []string{
	"_sysctl", "acct", "add_key", "bpf", "clock_adjtime", "clock_settime", "create_module",
	"delete_module", "finit_module", "fsconfig", "fsmount", "fsopen", "fspick", "get_kernel_syms",
	"init_module", "ioperm", "iopl", "kcmp", "kexec_file_load", "kexec_load", "keyctl",
	"lookup_dcookie", "mount", "mount_setattr", "move_mount", "move_pages", "name_to_handle_at",
	"nfsservctl", "open_by_handle_at", "open_tree", "perf_event_open", "pivot_root",
	"process_vm_readv", "process_vm_writev", "ptrace", "query_module", "quotactl", "reboot",
	"request_key", "setns", "settimeofday", "swapoff", "swapon", "sysfs", "umount2", "unshare",
	"uselib", "userfaultfd", "ustat", "vhangup",
}

// Compile returns the programs of a filter of the given mode over
// syscalls, refusing with errno (a name such as "EPERM", the default):
// filter, and in retain mode capsetFilter, the same with capset allowed,
// which the supervisor loads when it must still drop capabilities after
// loading the filter. It fails on an unknown mode, system call or errno,
// naming it.
func Compile(mode string, syscalls []string, errno string) (filter, capsetFilter []unix.SockFilter, err error) {
	if filter, err = program(mode, syscalls, errno); err != nil {
		return nil, nil, err
	}
	if mode == Retain {
		if capsetFilter, err = program(mode, syscalls, errno, "capset"); err != nil {
			return nil, nil, err
		}
	}
	return filter, capsetFilter, nil
}

// errnoValue returns the errno called name ("EPERM").
func errnoValue(name string) (syscall.Errno, error) {
	if name == "" {
		return unix.EPERM, nil
	}
	for e := syscall.Errno(1); e < 4096; e++ {
		if unix.ErrnoName(e) == name {
			return e, nil
		}
	}
	return 0, fmt.Errorf("seccomp: unknown errno %q (use a name such as EPERM or ENOSYS)", name)
}

// program assembles the filter for the running architecture. In retain
// mode, alsoAllow and execve are allowed too: the supervisor needs them
// between loading the filter and starting the app.
//
// The BPF program comes from go-seccomp-bpf, which also refuses the x32
// ABI on x86_64 so that a block list cannot be bypassed through it. The
// library always returns EPERM for a refused call; the app's errno is put
// in by rewriting those return instructions.
func program(mode string, syscalls []string, errnoName string, alsoAllow ...string) ([]unix.SockFilter, error) {
	info, err := arch.GetInfo("")
	if err != nil {
		return nil, fmt.Errorf("seccomp: %w", err)
	}
	errno, err := errnoValue(errnoName)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, n := range syscalls {
		// A name of the default list that this architecture lacks
		// (uselib on arm64) is skipped: it is no risk here.
		_, known := info.SyscallNames[n]
		switch {
		case known && !slices.Contains(names, n):
			names = append(names, n)
		case !known && !slices.Contains(DefaultBlocklist, n):
			return nil, fmt.Errorf("seccomp: unknown system call %q on %s", n, info.Name)
		}
	}
	policy := seccomp.Policy{DefaultAction: seccomp.ActionAllow}
	group := seccomp.SyscallGroup{Names: names, Action: seccomp.ActionErrno}
	switch mode {
	case Remove:
	case Retain:
		for _, n := range append(alsoAllow, "execve") {
			if !slices.Contains(group.Names, n) {
				group.Names = append(group.Names, n)
			}
		}
		policy.DefaultAction, group.Action = seccomp.ActionErrno, seccomp.ActionAllow
	default:
		return nil, fmt.Errorf("seccomp: mode %q is neither retain nor remove", mode)
	}
	if len(group.Names) == 0 {
		return nil, fmt.Errorf("seccomp: the %s set is empty", mode)
	}
	policy.Syscalls = []seccomp.SyscallGroup{group}
	insts, err := policy.Assemble()
	if err != nil {
		return nil, fmt.Errorf("seccomp: %w", err)
	}
	eperm := uint32(seccomp.ActionErrno) | uint32(unix.EPERM)
	for i, in := range insts {
		if r, ok := in.(bpf.RetConstant); ok && r.Val == eperm {
			insts[i] = bpf.RetConstant{Val: uint32(seccomp.ActionErrno) | uint32(errno)}
		}
	}
	raw, err := bpf.Assemble(insts)
	if err != nil {
		return nil, fmt.Errorf("seccomp: assembling the filter: %w", err)
	}
	filter := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		filter[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	return filter, nil
}
