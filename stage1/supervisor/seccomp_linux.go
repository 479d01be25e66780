package supervisor

import (
	"fmt"
	"slices"
	"syscall"
	"unsafe"

	seccomp "github.com/elastic/go-seccomp-bpf"
	"github.com/elastic/go-seccomp-bpf/arch"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// DefaultSeccompBlocklist is rkt.dev's default seccomp profile, applied in
// remove mode by isolating flavors when an app asks for no filter of its
// own: the system calls that reach past a container's namespaces into the
// host kernel (modules, kexec, reboot, swap, clock, accounting, keyrings),
// that undo its isolation (mounts, namespaces, pivot_root), that inspect
// other processes (ptrace, process_vm_*, kcmp) or that widen the kernel's
// attack surface for little use in apps (bpf, perf_event_open,
// userfaultfd, handle-based opens). It is close to Docker's default
// profile, expressed as a block list so that new, harmless system calls
// keep working. Names the running architecture does not have are skipped.
var DefaultSeccompBlocklist = []string{
	"_sysctl", "acct", "add_key", "bpf", "clock_adjtime", "clock_settime", "create_module",
	"delete_module", "finit_module", "fsconfig", "fsmount", "fsopen", "fspick", "get_kernel_syms",
	"init_module", "ioperm", "iopl", "kcmp", "kexec_file_load", "kexec_load", "keyctl",
	"lookup_dcookie", "mount", "mount_setattr", "move_mount", "move_pages", "name_to_handle_at",
	"nfsservctl", "open_by_handle_at", "open_tree", "perf_event_open", "pivot_root",
	"process_vm_readv", "process_vm_writev", "ptrace", "query_module", "quotactl", "reboot",
	"request_key", "setns", "settimeofday", "swapoff", "swapon", "sysfs", "umount2", "unshare",
	"uselib", "userfaultfd", "ustat", "vhangup",
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

// instructions assembles the filter for the running architecture. In
// retain mode, alsoAllow and execve are allowed too: the helper needs them
// between loading the filter and starting the app.
//
// The BPF program comes from go-seccomp-bpf, which also refuses the x32
// ABI on x86_64 so that a block list cannot be bypassed through it. The
// library always returns EPERM for a refused call; the app's errno is put
// in by rewriting those return instructions.
func (s *Seccomp) instructions(alsoAllow ...string) ([]bpf.Instruction, error) {
	info, err := arch.GetInfo("")
	if err != nil {
		return nil, fmt.Errorf("seccomp: %w", err)
	}
	errno, err := errnoValue(s.Errno)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, n := range s.Syscalls {
		// A name of the default list that this architecture lacks
		// (uselib on arm64) is skipped: it is no risk here.
		_, known := info.SyscallNames[n]
		switch {
		case known && !slices.Contains(names, n):
			names = append(names, n)
		case !known && !slices.Contains(DefaultSeccompBlocklist, n):
			return nil, fmt.Errorf("seccomp: unknown system call %q on %s", n, info.Name)
		}
	}
	policy := seccomp.Policy{DefaultAction: seccomp.ActionAllow}
	group := seccomp.SyscallGroup{Names: names, Action: seccomp.ActionErrno}
	switch s.Mode {
	case SeccompRemove:
	case SeccompRetain:
		for _, n := range append(alsoAllow, "execve") {
			if !slices.Contains(group.Names, n) {
				group.Names = append(group.Names, n)
			}
		}
		policy.DefaultAction, group.Action = seccomp.ActionErrno, seccomp.ActionAllow
	default:
		return nil, fmt.Errorf("seccomp: mode %q is neither retain nor remove", s.Mode)
	}
	if len(group.Names) == 0 {
		return nil, fmt.Errorf("seccomp: the %s set is empty", s.Mode)
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
	return insts, nil
}

// load installs the filter on the calling thread, which must already have
// no_new_privs or CAP_SYS_ADMIN.
func (s *Seccomp) load(alsoAllow ...string) error {
	insts, err := s.instructions(alsoAllow...)
	if err != nil {
		return err
	}
	raw, err := bpf.Assemble(insts)
	if err != nil {
		return fmt.Errorf("seccomp: assembling the filter: %w", err)
	}
	filter := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		filter[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	if err := unix.Prctl(unix.PR_SET_SECCOMP, unix.SECCOMP_MODE_FILTER, uintptr(unsafe.Pointer(&prog)), 0, 0); err != nil {
		return fmt.Errorf("seccomp: loading the filter: %w", err)
	}
	return nil
}
