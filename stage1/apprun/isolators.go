package apprun

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/appc/spec/schema/types"

	"rkt.dev/rkt/stage1"
	"rkt.dev/rkt/stage1/seccompfilter"
	"rkt.dev/rkt/stage1/supervisor"
)

// DefaultCapabilities is the appc spec's default capability set (ace.md):
// what an app gets when its manifest asks for nothing else, and what a
// remove set is taken from.
var DefaultCapabilities = []string{
	"CAP_AUDIT_WRITE", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_KILL",
	"CAP_MKNOD", "CAP_NET_RAW", "CAP_NET_BIND_SERVICE", "CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP",
	"CAP_SETFCAP", "CAP_SYS_CHROOT",
}

// Seccomp set wildcards, as rkt accepted them.
const (
	// seccompAll in a retain set turns filtering off.
	seccompAll = "@appc.io/all"
	// seccompEmpty in a remove set asks for the default profile.
	seccompEmpty = "@appc.io/empty"
)

// seccompDefaultNames expand to the default profile's block list.
var seccompDefaultNames = []string{"@rkt/default-blacklist", "@docker/default-blacklist"}

// IsolatorOptions say how a flavor applies an app's isolators.
type IsolatorOptions struct {
	// Defaults applies rkt's defaults where the app asks for nothing:
	// the default capability set, the default seccomp profile and /proc
	// masking. The isolating flavors (nspawn, kvm) set it; fly does not,
	// as it exists to run privileged host software, and applies only what
	// an image or the user asked for.
	Defaults bool
	// Disable* are --insecure-options=capabilities, paths and seccomp:
	// they turn off the defaults and the app's own isolators of a kind.
	DisableCapabilities, DisablePaths, DisableSeccomp bool
	// CgroupParent is where an app with resource limits gets its cgroup,
	// relative to the supervisor's cgroup: CgroupParent/<app name>.
	CgroupParent string
}

// IsolatorOptionsFromFlags returns the options the run flags ask for; a
// flavor sets Defaults and CgroupParent itself.
func IsolatorOptionsFromFlags(f stage1.RunFlags) IsolatorOptions {
	return IsolatorOptions{
		DisableCapabilities: f.DisableCapabilities,
		DisablePaths:        f.DisablePaths,
		DisableSeccomp:      f.DisableSeccomp,
	}
}

// SupervisorIsolators turns an app's appc isolators (from its image
// manifest, overridden by the pod manifest and the command line) into what
// the supervisor enforces. It is the one conversion every flavor uses: fly
// and nspawn on the host, the kvm guest agent in the VM.
//
// Isolators the supervisor has no means to enforce (SELinux contexts,
// block and network bandwidth, sysctls) are left out, as rkt did.
func SupervisorIsolators(app types.ACName, isolators types.Isolators, o IsolatorOptions) (supervisor.Isolators, error) {
	var si supervisor.Isolators
	var capsRetain, capsRemove []string
	var seccompSet types.LinuxSeccompSet
	var seccompMode supervisor.SeccompMode
	for _, iso := range isolators {
		switch v := iso.Value().(type) {
		case *types.LinuxCapabilitiesRetainSet:
			capsRetain = append(capsRetain, capNames(v.Set())...)
		case *types.LinuxCapabilitiesRevokeSet:
			capsRemove = append(capsRemove, capNames(v.Set())...)
		case *types.LinuxNoNewPrivileges:
			si.NoNewPrivileges = bool(*v)
		case *types.LinuxSeccompRetainSet:
			if seccompSet != nil {
				return si, fmt.Errorf("app %s: only one seccomp isolator is allowed", app)
			}
			seccompSet, seccompMode = v, supervisor.SeccompRetain
		case *types.LinuxSeccompRemoveSet:
			if seccompSet != nil {
				return si, fmt.Errorf("app %s: only one seccomp isolator is allowed", app)
			}
			seccompSet, seccompMode = v, supervisor.SeccompRemove
		case *types.LinuxOOMScoreAdj:
			n := int(*v)
			si.OOMScoreAdj = &n
		case *types.LinuxCPUShares:
			si.CPUShares = int64(*v)
		case *types.ResourceMemory:
			if l := v.Limit(); l != nil {
				si.MemoryLimit = l.Value()
			}
		case *types.ResourceCPU:
			if l := v.Limit(); l != nil {
				si.CPUMillis = l.MilliValue()
			}
		}
	}
	var err error
	if si.Capabilities, err = capabilitySet(capsRetain, capsRemove, o); err != nil {
		return si, fmt.Errorf("app %s: %w", app, err)
	}
	if si.Seccomp, err = seccompFilter(seccompSet, seccompMode, o); err != nil {
		return si, fmt.Errorf("app %s: %w", app, err)
	}
	if f := si.Seccomp; f != nil {
		// Compiled where the pod is planned (for kvm, on the host):
		// the guest agent only loads the programs (see
		// stage1/seccompfilter).
		if f.Filter, f.CapsetFilter, err = seccompfilter.Compile(string(f.Mode), f.Syscalls, f.Errno); err != nil {
			return si, fmt.Errorf("app %s: %w", app, err)
		}
	}
	if si.MemoryLimit > 0 || si.CPUMillis > 0 || si.CPUShares > 0 {
		si.Cgroup = path.Join(o.CgroupParent, app.String())
	}
	si.MaskKernelPaths = o.Defaults && !o.DisablePaths
	return si, nil
}

func capNames(set []types.LinuxCapability) []string {
	names := make([]string, len(set))
	for i, c := range set {
		names[i] = supervisor.CanonicalCapability(string(c))
	}
	return names
}

// capabilitySet is the app's capability set, or nil to keep the
// supervisor's.
func capabilitySet(retain, remove []string, o IsolatorOptions) ([]string, error) {
	switch {
	case retain != nil && remove != nil:
		return nil, errors.New("a capabilities retain set and a remove set cannot be combined")
	case o.DisableCapabilities:
		return nil, nil
	case retain != nil:
		return retain, nil
	case remove != nil:
		// The spec: a remove set is taken from the default set, so
		// removing a capability outside it changes nothing.
		set := []string{} // removing all 14 leaves none, not all
		for _, c := range DefaultCapabilities {
			if !slices.Contains(remove, c) {
				set = append(set, c)
			}
		}
		return set, nil
	case o.Defaults:
		return append([]string{}, DefaultCapabilities...), nil
	}
	return nil, nil
}

// seccompFilter is the app's seccomp filter, or nil for none.
func seccompFilter(set types.LinuxSeccompSet, mode supervisor.SeccompMode, o IsolatorOptions) (*supervisor.Seccomp, error) {
	if o.DisableSeccomp {
		return nil, nil
	}
	defaultProfile := &supervisor.Seccomp{Mode: supervisor.SeccompRemove, Syscalls: seccompfilter.DefaultBlocklist}
	if set == nil {
		if o.Defaults {
			return defaultProfile, nil
		}
		return nil, nil
	}
	f := &supervisor.Seccomp{Mode: mode, Errno: string(set.Errno())}
	for _, e := range set.Set() {
		name := string(e)
		switch {
		case name == seccompAll && mode == supervisor.SeccompRetain:
			return nil, nil
		case name == seccompEmpty && mode == supervisor.SeccompRemove:
			defaultProfile.Errno = f.Errno
			return defaultProfile, nil
		case slices.Contains(seccompDefaultNames, name):
			f.Syscalls = append(f.Syscalls, seccompfilter.DefaultBlocklist...)
		case strings.HasPrefix(name, "@"):
			return nil, fmt.Errorf("seccomp: unknown wildcard %q (known: %s, %s, %s)", name, seccompAll, seccompEmpty, strings.Join(seccompDefaultNames, ", "))
		default:
			f.Syscalls = append(f.Syscalls, name)
		}
	}
	return f, nil
}
