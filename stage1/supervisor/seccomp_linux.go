package supervisor

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// load installs the compiled filter on the calling thread, which must
// already have no_new_privs or CAP_SYS_ADMIN; capset picks the variant
// that still allows capset (retain mode, loaded before dropping
// capabilities).
func (s *Seccomp) load(capset bool) error {
	filter := s.Filter
	if capset && s.CapsetFilter != nil {
		filter = s.CapsetFilter
	}
	if len(filter) == 0 {
		return fmt.Errorf("seccomp: the %s filter was not compiled (stage1/seccompfilter)", s.Mode)
	}
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	if err := unix.Prctl(unix.PR_SET_SECCOMP, unix.SECCOMP_MODE_FILTER, uintptr(unsafe.Pointer(&prog)), 0, 0); err != nil {
		return fmt.Errorf("seccomp: loading the filter: %w", err)
	}
	return nil
}
