package api

import (
	"encoding/binary"

	"golang.org/x/sys/unix"

	"rkt.dev/rkt/stage1/supervisor"
)

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
		i.Seccomp = &Seccomp{Mode: string(si.Seccomp.Mode), Syscalls: si.Seccomp.Syscalls, Errno: si.Seccomp.Errno,
			Filter: encodeFilter(si.Seccomp.Filter), CapsetFilter: encodeFilter(si.Seccomp.CapsetFilter)}
	}
	if si.OOMScoreAdj != nil {
		n := int32(*si.OOMScoreAdj)
		i.OomScoreAdj = &n
	}
	return i
}

// filterEntry is the size of a struct sock_filter on the wire.
const filterEntry = 8

// encodeFilter puts a BPF program on the wire (see Seccomp.filter).
func encodeFilter(f []unix.SockFilter) []byte {
	if f == nil {
		return nil
	}
	b := make([]byte, 0, len(f)*filterEntry)
	for _, in := range f {
		b = binary.LittleEndian.AppendUint16(b, in.Code)
		b = append(b, in.Jt, in.Jf)
		b = binary.LittleEndian.AppendUint32(b, in.K)
	}
	return b
}

// decodeFilter takes a BPF program off the wire. A length that is not a
// whole number of entries gives no program, which the supervisor refuses
// to start the app with.
func decodeFilter(b []byte) []unix.SockFilter {
	if len(b) == 0 || len(b)%filterEntry != 0 {
		return nil
	}
	f := make([]unix.SockFilter, len(b)/filterEntry)
	for i := range f {
		e := b[i*filterEntry:]
		f[i] = unix.SockFilter{Code: binary.LittleEndian.Uint16(e), Jt: e[2], Jf: e[3], K: binary.LittleEndian.Uint32(e[4:])}
	}
	return f
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
		si.Seccomp = &supervisor.Seccomp{Mode: supervisor.SeccompMode(i.Seccomp.Mode), Syscalls: i.Seccomp.Syscalls, Errno: i.Seccomp.Errno,
			Filter: decodeFilter(i.Seccomp.Filter), CapsetFilter: decodeFilter(i.Seccomp.CapsetFilter)}
	}
	if i.OomScoreAdj != nil {
		n := int(*i.OomScoreAdj)
		si.OOMScoreAdj = &n
	}
	return si
}
