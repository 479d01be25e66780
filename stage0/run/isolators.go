package run

import (
	"fmt"
	"strings"

	"github.com/appc/spec/schema/types"
)

// IsolatorOptions are an app's isolator flags (--memory, --cpu,
// --cpu-shares, --caps-retain, --caps-remove, --seccomp, --oom-score-adj),
// kept as given so that stage0 validates and converts them in one place.
// Each one set replaces the image's isolator of the same kind.
type IsolatorOptions struct {
	Memory      string   // 64M or 64m (MiB, as Docker), 64Mi, 64000000 (see memoryQuantity)
	CPU         string   // resource quantity: 500m, 2
	CPUShares   *int     // relative weight, 2..262144
	CapsRetain  []string // capability names
	CapsRemove  []string
	Seccomp     string // mode=retain|remove[,errno=E],syscall,...
	OOMScoreAdj *int   // -1000..1000
}

// apply replaces the app's isolators with the ones the flags ask for.
func (o IsolatorOptions) apply(isos *types.Isolators) error {
	var add []types.Isolator
	if o.Memory != "" {
		mem := memoryQuantity(o.Memory)
		m, err := types.NewResourceMemoryIsolator(mem, mem)
		if err != nil {
			return fmt.Errorf("--memory=%s: %w", o.Memory, err)
		}
		add = append(add, m.AsIsolator())
	}
	if o.CPU != "" {
		c, err := types.NewResourceCPUIsolator(o.CPU, o.CPU)
		if err != nil {
			return fmt.Errorf("--cpu=%s: %w", o.CPU, err)
		}
		add = append(add, c.AsIsolator())
	}
	if o.CPUShares != nil {
		s, err := types.NewLinuxCPUShares(*o.CPUShares)
		if err != nil {
			return fmt.Errorf("--cpu-shares=%d: %w", *o.CPUShares, err)
		}
		add = append(add, s.AsIsolator())
	}
	if o.OOMScoreAdj != nil {
		s, err := types.NewLinuxOOMScoreAdj(*o.OOMScoreAdj)
		if err != nil {
			return fmt.Errorf("--oom-score-adj=%d: %w", *o.OOMScoreAdj, err)
		}
		add = append(add, s.AsIsolator())
	}
	caps, err := o.capabilities()
	if err != nil {
		return err
	}
	seccomp, err := o.seccomp()
	if err != nil {
		return err
	}
	add = append(add, append(caps, seccomp...)...)
	for _, iso := range add {
		// A retain set replaces a remove set and the other way round:
		// the two may not be combined.
		isos.ReplaceIsolatorsByName(iso, conflicting(iso.Name))
	}
	return nil
}

// conflicting lists the isolator names an isolator called name replaces.
func conflicting(name types.ACIdentifier) []types.ACIdentifier {
	switch name {
	case types.LinuxCapabilitiesRetainSetName, types.LinuxCapabilitiesRevokeSetName:
		return []types.ACIdentifier{types.LinuxCapabilitiesRetainSetName, types.LinuxCapabilitiesRevokeSetName}
	case types.LinuxSeccompRetainSetName, types.LinuxSeccompRemoveSetName:
		return []types.ACIdentifier{types.LinuxSeccompRetainSetName, types.LinuxSeccompRemoveSetName}
	}
	return []types.ACIdentifier{name}
}

func (o IsolatorOptions) capabilities() ([]types.Isolator, error) {
	switch {
	case o.CapsRetain != nil && o.CapsRemove != nil:
		return nil, fmt.Errorf("--caps-retain and --caps-remove cannot be combined for one app")
	case o.CapsRetain != nil:
		s, err := types.NewLinuxCapabilitiesRetainSet(o.CapsRetain...)
		if err != nil {
			return nil, fmt.Errorf("--caps-retain: %w", err)
		}
		iso, err := s.AsIsolator()
		return []types.Isolator{*iso}, err
	case o.CapsRemove != nil:
		s, err := types.NewLinuxCapabilitiesRevokeSet(o.CapsRemove...)
		if err != nil {
			return nil, fmt.Errorf("--caps-remove: %w", err)
		}
		iso, err := s.AsIsolator()
		return []types.Isolator{*iso}, err
	}
	return nil, nil
}

// seccomp parses --seccomp mode=retain|remove[,errno=E],syscall,...
func (o IsolatorOptions) seccomp() ([]types.Isolator, error) {
	if o.Seccomp == "" {
		return nil, nil
	}
	var mode, errno string
	var syscalls []string
	for _, item := range strings.Split(o.Seccomp, ",") {
		k, v, isKV := strings.Cut(strings.TrimSpace(item), "=")
		switch {
		case isKV && k == "mode":
			mode = v
		case isKV && k == "errno":
			errno = v
		case isKV:
			return nil, fmt.Errorf("--seccomp=%s: unknown key %q (want mode=retain|remove[,errno=E],syscall,...)", o.Seccomp, k)
		case k != "":
			syscalls = append(syscalls, k)
		}
	}
	var iso *types.Isolator
	var err error
	switch mode {
	case "retain":
		var s *types.LinuxSeccompRetainSet
		if s, err = types.NewLinuxSeccompRetainSet(errno, syscalls...); err == nil {
			iso, err = s.AsIsolator()
		}
	case "remove":
		var s *types.LinuxSeccompRemoveSet
		if s, err = types.NewLinuxSeccompRemoveSet(errno, syscalls...); err == nil {
			iso, err = s.AsIsolator()
		}
	default:
		return nil, fmt.Errorf("--seccomp=%s: mode must be retain or remove, not %q", o.Seccomp, mode)
	}
	if err != nil {
		return nil, fmt.Errorf("--seccomp=%s: %w", o.Seccomp, err)
	}
	return []types.Isolator{*iso}, nil
}

// memoryQuantity turns a --memory value into the resource quantity of the
// appc isolator. A number with a one-letter suffix (k, m, g, t, either
// case) is read in binary units, as docker run --memory, Podman and Kata
// read it and as users type it: 64M and 64m are 64 MiB. The isolator's own
// format (Kubernetes quantities) would make 64M 64,000,000 bytes and 64m
// 0.064 bytes. Everything else (64Mi, 64000000, 1e9) is passed on as a
// quantity.
func memoryQuantity(v string) string {
	n := len(v)
	if num := v[:max(n-1, 0)]; num == "" || strings.Trim(num, "0123456789.") != "" || strings.Count(num, ".") > 1 {
		return v
	}
	if suffix, ok := map[byte]string{'k': "Ki", 'm': "Mi", 'g': "Gi", 't': "Ti"}[v[n-1]|0x20]; ok {
		return v[:n-1] + suffix
	}
	return v
}
