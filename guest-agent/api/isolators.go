package api

import "rkt.dev/rkt/stage1/supervisor"

// NewIsolators converts the supervisor's isolators for the wire.
func NewIsolators(si supervisor.Isolators) *Isolators {
	i := &Isolators{
		CapabilitiesSet: si.Capabilities != nil,
		Capabilities:    si.Capabilities,
		NoNewPrivileges: si.NoNewPrivileges,
		MemoryLimit:     si.MemoryLimit,
		CpuMillis:       si.CPUMillis,
		CpuShares:       si.CPUShares,
		Cgroup:          si.Cgroup,
		MaskKernelPaths: si.MaskKernelPaths,
	}
	if si.Seccomp != nil {
		i.Seccomp = &Seccomp{Mode: string(si.Seccomp.Mode), Syscalls: si.Seccomp.Syscalls, Errno: si.Seccomp.Errno}
	}
	if si.OOMScoreAdj != nil {
		n := int32(*si.OOMScoreAdj)
		i.OomScoreAdj = &n
	}
	return i
}

// Supervisor converts wire isolators back; nil restricts nothing.
func (i *Isolators) Supervisor() supervisor.Isolators {
	if i == nil {
		return supervisor.Isolators{}
	}
	si := supervisor.Isolators{
		NoNewPrivileges: i.NoNewPrivileges,
		MemoryLimit:     i.MemoryLimit,
		CPUMillis:       i.CpuMillis,
		CPUShares:       i.CpuShares,
		Cgroup:          i.Cgroup,
		MaskKernelPaths: i.MaskKernelPaths,
	}
	if i.CapabilitiesSet {
		// An empty set must stay non-nil: it means "no capabilities".
		si.Capabilities = append([]string{}, i.Capabilities...)
	}
	if i.Seccomp != nil {
		si.Seccomp = &supervisor.Seccomp{Mode: supervisor.SeccompMode(i.Seccomp.Mode), Syscalls: i.Seccomp.Syscalls, Errno: i.Seccomp.Errno}
	}
	if i.OomScoreAdj != nil {
		n := int(*i.OomScoreAdj)
		si.OOMScoreAdj = &n
	}
	return si
}
