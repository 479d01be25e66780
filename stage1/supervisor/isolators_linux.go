package supervisor

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// Isolators are applied in two steps around the switch to the app's user,
// on one locked OS thread: capability sets, no_new_privs and seccomp
// filters belong to a thread, not to a process, and the thread that sets
// them must be the one that execs the app (the exec helper) or forks it
// (a direct start).

// restrictBeforeCredentials runs as root, before the thread changes user:
// it sets oom_score_adj (lowering it needs CAP_SYS_RESOURCE), shrinks the
// bounding set, clears the ambient set and trims the inheritable set, none
// of which an unprivileged process could still do.
func (i *Isolators) restrictBeforeCredentials() error {
	if i.OOMScoreAdj != nil {
		if err := os.WriteFile("/proc/self/oom_score_adj", []byte(strconv.Itoa(*i.OOMScoreAdj)), 0); err != nil {
			return fmt.Errorf("setting oom_score_adj: %w", err)
		}
	}
	if i.Capabilities == nil {
		return nil
	}
	mask, err := CapabilityMask(i.Capabilities)
	if err != nil {
		return err
	}
	for c := uintptr(0); c < 64; c++ {
		if mask&(1<<c) != 0 {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, c, 0, 0, 0); err != nil {
			if errors.Is(err, unix.EINVAL) {
				break // past the kernel's last capability
			}
			return fmt.Errorf("dropping capability %d from the bounding set: %w", c, err)
		}
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("clearing ambient capabilities: %w", err)
	}
	hdr, data, err := capget()
	if err != nil {
		return err
	}
	setCaps(&data, inheritable, caps(data, inheritable)&mask)
	return capset(hdr, data)
}

// restrictAfterCredentials runs as the app's user, just before exec: for an
// app running as root it narrows the permitted and effective sets to the
// app's set (the kernel already emptied them for any other user), sets
// no_new_privs if asked and loads the seccomp filter.
//
// The kernel loads a filter only for a thread that has CAP_SYS_ADMIN or
// no_new_privs. While the thread still has CAP_SYS_ADMIN, the filter is
// loaded before the capabilities are narrowed (a retain set then also
// allows capset), so a root app does not get no_new_privs it did not ask
// for; an app that has lost CAP_SYS_ADMIN already gets no_new_privs, as in
// rkt.
func (i *Isolators) restrictAfterCredentials(uid int) error {
	seccompFirst := false
	if i.Seccomp != nil {
		_, data, err := capget()
		if err != nil {
			return err
		}
		seccompFirst = caps(data, effective)&(1<<unix.CAP_SYS_ADMIN) != 0
	}
	if seccompFirst {
		if err := i.Seccomp.load(true); err != nil {
			return err
		}
	}
	if i.Capabilities != nil && uid == 0 {
		mask, err := CapabilityMask(i.Capabilities)
		if err != nil {
			return err
		}
		hdr, data, err := capget()
		if err != nil {
			return err
		}
		keep := caps(data, permitted) & mask
		setCaps(&data, permitted, keep)
		setCaps(&data, effective, keep)
		setCaps(&data, inheritable, keep)
		if err := capset(hdr, data); err != nil {
			return err
		}
	}
	if i.NoNewPrivileges || (i.Seccomp != nil && !seccompFirst) {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("setting no_new_privs: %w", err)
		}
	}
	if i.Seccomp != nil && !seccompFirst {
		return i.Seccomp.load(false)
	}
	return nil
}

// capSet selects one of a thread's capability sets.
type capSet int

const (
	effective capSet = iota
	permitted
	inheritable
)

// field returns the 32-bit word of set in d.
func field(d *unix.CapUserData, set capSet) *uint32 {
	switch set {
	case effective:
		return &d.Effective
	case permitted:
		return &d.Permitted
	default:
		return &d.Inheritable
	}
}

// caps returns one set as a 64-bit mask (the kernel splits it in two words).
func caps(data [2]unix.CapUserData, set capSet) uint64 {
	return uint64(*field(&data[0], set)) | uint64(*field(&data[1], set))<<32
}

func setCaps(data *[2]unix.CapUserData, set capSet, mask uint64) {
	*field(&data[0], set) = uint32(mask)
	*field(&data[1], set) = uint32(mask >> 32)
}

func capget() (*unix.CapUserHeader, [2]unix.CapUserData, error) {
	hdr := &unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(hdr, &data[0]); err != nil {
		return nil, data, fmt.Errorf("reading capabilities: %w", err)
	}
	return hdr, data, nil
}

func capset(hdr *unix.CapUserHeader, data [2]unix.CapUserData) error {
	if err := unix.Capset(hdr, &data[0]); err != nil {
		return fmt.Errorf("setting capabilities: %w", err)
	}
	return nil
}
