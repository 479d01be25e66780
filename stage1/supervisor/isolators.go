package supervisor

import (
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// Isolators restrict an app beyond its root filesystem. They are applied by
// the supervisor on every flavor, on the thread that builds the app's root
// and then forks or execs it (see Supervisor.Start): the cgroup before the
// exec helper runs any code of its own, /proc masking while the root is
// built, and the rest just before the app's command starts, so the app
// never runs a single instruction without them.
//
// The zero value restricts nothing: the app keeps whatever the supervisor
// has. A flavor that isolates (nspawn, kvm) fills in rkt's defaults through
// apprun.SupervisorIsolators; fly only applies what the user asked for.
type Isolators struct {
	// Capabilities, when not nil, is the app's whole capability set, by
	// name ("CAP_NET_BIND_SERVICE"): it becomes the bounding set and, for
	// an app running as root, the permitted, effective and inheritable
	// sets. An app running as another user gets no capabilities, as in
	// rkt (which only set systemd's CapabilityBoundingSet). Nil keeps the
	// supervisor's own sets.
	Capabilities []string `json:"capabilities"`
	// NoNewPrivileges sets PR_SET_NO_NEW_PRIVS: setuid binaries and file
	// capabilities no longer grant anything.
	NoNewPrivileges bool `json:"noNewPrivileges,omitempty"`
	// Seccomp, when set, is the system call filter of the app.
	Seccomp *Seccomp `json:"seccomp,omitempty"`
	// OOMScoreAdj, when set, is written to the app's oom_score_adj.
	OOMScoreAdj *int `json:"oomScoreAdj,omitempty"`
	// MemoryLimit is the app's memory limit in bytes; 0 means none.
	MemoryLimit int64 `json:"memoryLimit,omitempty"`
	// CPUMillis is the app's CPU limit in thousandths of a CPU (CFS
	// quota); 0 means none.
	CPUMillis int64 `json:"cpuMillis,omitempty"`
	// CPUShares is the app's relative CPU weight in cgroup v1 units
	// (2..262144, 1024 is the default); 0 leaves the default.
	CPUShares int64 `json:"cpuShares,omitempty"`
	// Cgroup names the app's cgroup, relative to the cgroup the
	// supervisor was in when it first needed one ("rkt-UUID/app"). The
	// supervisor creates it in every hierarchy carrying a controller the
	// limits above need, moves the helper into it before the helper runs,
	// and removes it when the app exits. Required when a limit is set.
	Cgroup string `json:"cgroup,omitempty"`
	// MaskKernelPaths hides or write-protects the parts of /proc that
	// expose or control the host kernel (see maskedPaths). It applies to
	// PrivateSystemMounts only: fly shares the host's /proc on purpose.
	MaskKernelPaths bool `json:"maskKernelPaths,omitempty"`
}

// SeccompMode says how a seccomp filter's syscall list is read.
type SeccompMode string

const (
	// SeccompRetain allows only the listed syscalls.
	SeccompRetain SeccompMode = "retain"
	// SeccompRemove allows everything but the listed syscalls.
	SeccompRemove SeccompMode = "remove"
)

// Seccomp is a system call filter: its specification, and the BPF
// programs compiled from it by stage1/seccompfilter, which are what the
// supervisor loads. The compiling is left to the caller so that the kvm
// guest agent need not link the compiler (see that package).
type Seccomp struct {
	Mode     SeccompMode `json:"mode"`
	Syscalls []string    `json:"syscalls"`
	// Errno is the error a refused syscall returns, by name ("EPERM",
	// the default, "ENOSYS", ...).
	Errno string `json:"errno,omitempty"`
	// Filter is the compiled program. CapsetFilter, in retain mode, is
	// the same with capset allowed too, for when the filter must be
	// loaded before the capabilities are dropped.
	Filter       []unix.SockFilter `json:"filter"`
	CapsetFilter []unix.SockFilter `json:"capsetFilter,omitempty"`
}

// startThreadSyscalls are the system calls the Go runtime and
// syscall.ForkExec may make on the thread that starts an app directly,
// after that thread has loaded the app's seccomp filter and until it has
// forked the app and exited (see Supervisor.startDirect).
var startThreadSyscalls = []string{
	"capget", "capset", "prctl", "clone", "clone3", "execve", "exit", "exit_group", "wait4",
	"futex", "mmap", "munmap", "madvise", "mprotect", "rt_sigprocmask", "rt_sigaction",
	"rt_sigreturn", "sigaltstack", "sched_yield", "nanosleep", "read", "write", "close",
	"pipe2", "dup3", "fcntl", "prlimit64", "setsid", "gettid", "getpid", "tgkill",
}

// allowsDirectStart reports whether an app with these isolators can be
// started from a thread of the supervisor itself rather than through the
// exec helper. Three things rule it out: a cgroup (the helper is moved into
// it before it runs any code; a thread cannot take its future child
// there), oom_score_adj (a per-process value, which the supervisor would
// have to change for itself) and a seccomp filter that may refuse what the
// Go runtime needs on the starting thread (any retain set, or a remove set
// naming one of startThreadSyscalls), which would crash the supervisor.
func (i *Isolators) allowsDirectStart() bool {
	if i.hasLimits() || i.OOMScoreAdj != nil {
		return false
	}
	if i.Seccomp == nil {
		return true
	}
	if i.Seccomp.Mode != SeccompRemove {
		return false
	}
	for _, n := range i.Seccomp.Syscalls {
		if slices.Contains(startThreadSyscalls, n) {
			return false
		}
	}
	return true
}

// hasLimits reports whether the app needs a cgroup of its own.
func (i *Isolators) hasLimits() bool {
	return i.MemoryLimit > 0 || i.CPUMillis > 0 || i.CPUShares > 0
}

// validate rejects isolators that cannot be applied, so the error comes
// from Start rather than from a half-started helper.
func (i *Isolators) validate() error {
	if _, err := CapabilityMask(i.Capabilities); err != nil {
		return err
	}
	if i.Seccomp != nil {
		switch {
		case i.Seccomp.Mode != SeccompRetain && i.Seccomp.Mode != SeccompRemove:
			return fmt.Errorf("seccomp: mode %q is neither retain nor remove", i.Seccomp.Mode)
		case len(i.Seccomp.Filter) == 0:
			return fmt.Errorf("seccomp: the %s filter was not compiled (stage1/seccompfilter)", i.Seccomp.Mode)
		}
	}
	if i.OOMScoreAdj != nil && (*i.OOMScoreAdj < -1000 || *i.OOMScoreAdj > 1000) {
		return fmt.Errorf("oom-score-adj %d is outside -1000..1000", *i.OOMScoreAdj)
	}
	if i.MemoryLimit < 0 || i.CPUMillis < 0 {
		return fmt.Errorf("negative resource limit (memory %d, cpu %dm)", i.MemoryLimit, i.CPUMillis)
	}
	if i.CPUShares != 0 && (i.CPUShares < 2 || i.CPUShares > 262144) {
		return fmt.Errorf("cpu-shares %d is outside 2..262144", i.CPUShares)
	}
	if i.hasLimits() {
		c := path.Clean("/" + i.Cgroup)
		if i.Cgroup == "" || c == "/" || strings.Contains(i.Cgroup, "..") {
			return fmt.Errorf("resource limits need a cgroup name below the supervisor's cgroup, got %q", i.Cgroup)
		}
	}
	return nil
}

// capabilities maps the names of Linux capabilities to their numbers.
var capabilities = map[string]uint{
	"CAP_CHOWN": unix.CAP_CHOWN, "CAP_DAC_OVERRIDE": unix.CAP_DAC_OVERRIDE,
	"CAP_DAC_READ_SEARCH": unix.CAP_DAC_READ_SEARCH, "CAP_FOWNER": unix.CAP_FOWNER,
	"CAP_FSETID": unix.CAP_FSETID, "CAP_KILL": unix.CAP_KILL, "CAP_SETGID": unix.CAP_SETGID,
	"CAP_SETUID": unix.CAP_SETUID, "CAP_SETPCAP": unix.CAP_SETPCAP,
	"CAP_LINUX_IMMUTABLE": unix.CAP_LINUX_IMMUTABLE, "CAP_NET_BIND_SERVICE": unix.CAP_NET_BIND_SERVICE,
	"CAP_NET_BROADCAST": unix.CAP_NET_BROADCAST, "CAP_NET_ADMIN": unix.CAP_NET_ADMIN,
	"CAP_NET_RAW": unix.CAP_NET_RAW, "CAP_IPC_LOCK": unix.CAP_IPC_LOCK, "CAP_IPC_OWNER": unix.CAP_IPC_OWNER,
	"CAP_SYS_MODULE": unix.CAP_SYS_MODULE, "CAP_SYS_RAWIO": unix.CAP_SYS_RAWIO,
	"CAP_SYS_CHROOT": unix.CAP_SYS_CHROOT, "CAP_SYS_PTRACE": unix.CAP_SYS_PTRACE,
	"CAP_SYS_PACCT": unix.CAP_SYS_PACCT, "CAP_SYS_ADMIN": unix.CAP_SYS_ADMIN, "CAP_SYS_BOOT": unix.CAP_SYS_BOOT,
	"CAP_SYS_NICE": unix.CAP_SYS_NICE, "CAP_SYS_RESOURCE": unix.CAP_SYS_RESOURCE,
	"CAP_SYS_TIME": unix.CAP_SYS_TIME, "CAP_SYS_TTY_CONFIG": unix.CAP_SYS_TTY_CONFIG,
	"CAP_MKNOD": unix.CAP_MKNOD, "CAP_LEASE": unix.CAP_LEASE, "CAP_AUDIT_WRITE": unix.CAP_AUDIT_WRITE,
	"CAP_AUDIT_CONTROL": unix.CAP_AUDIT_CONTROL, "CAP_SETFCAP": unix.CAP_SETFCAP,
	"CAP_MAC_OVERRIDE": unix.CAP_MAC_OVERRIDE, "CAP_MAC_ADMIN": unix.CAP_MAC_ADMIN,
	"CAP_SYSLOG": unix.CAP_SYSLOG, "CAP_WAKE_ALARM": unix.CAP_WAKE_ALARM,
	"CAP_BLOCK_SUSPEND": unix.CAP_BLOCK_SUSPEND, "CAP_AUDIT_READ": unix.CAP_AUDIT_READ,
	"CAP_PERFMON": unix.CAP_PERFMON, "CAP_BPF": unix.CAP_BPF,
	"CAP_CHECKPOINT_RESTORE": unix.CAP_CHECKPOINT_RESTORE,
}

// CapabilityNames lists the capability names the supervisor knows, sorted,
// for error messages and documentation.
func CapabilityNames() []string {
	names := make([]string, 0, len(capabilities))
	for n := range capabilities {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// CapabilityMask turns capability names (with or without the CAP_ prefix,
// any case) into the bit mask the kernel shows in /proc/PID/status.
func CapabilityMask(names []string) (uint64, error) {
	var mask uint64
	for _, n := range names {
		c, ok := capabilities[CanonicalCapability(n)]
		if !ok {
			return 0, fmt.Errorf("unknown capability %q (known: %s)", n, strings.Join(CapabilityNames(), ", "))
		}
		mask |= 1 << c
	}
	return mask, nil
}

// CanonicalCapability spells a capability name the way the kernel headers
// and the appc spec do: upper case, with the CAP_ prefix.
func CanonicalCapability(name string) string {
	n := strings.ToUpper(strings.TrimSpace(name))
	if !strings.HasPrefix(n, "CAP_") {
		n = "CAP_" + n
	}
	return n
}
