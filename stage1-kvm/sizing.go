package main

import (
	"fmt"
	"runtime"

	"github.com/appc/spec/schema/types"

	"rkt.dev/rkt/stage1"
)

// Guest sizing. A pod's VM gets what its apps' isolators ask for, never the
// whole host:
//
//   - memory: the sum of the apps' resource/memory limits, plus
//     memoryOverheadMiB for the guest kernel, the agent and the tmpfs that
//     holds the apps' writable layers; an app without a limit counts as
//     defaultAppMemoryMiB. Guest RAM is only allocated by the host as the
//     guest touches it, so an unused reservation costs little.
//   - vCPUs: the sum of the apps' resource/cpu limits (in cores) rounded up;
//     an app without a limit counts as one vCPU; at least 1 and at most the
//     host's CPU count.
const (
	memoryOverheadMiB   = 128
	defaultAppMemoryMiB = 128
)

// vmSize is the guest's memory and vCPU count.
type vmSize struct {
	MemoryMiB int
	VCPUs     int
}

// sizeVM computes the guest size for apps on a host with hostCPUs CPUs.
func sizeVM(apps []stage1.App, hostCPUs int) (vmSize, error) {
	s := vmSize{MemoryMiB: memoryOverheadMiB}
	var milliCPUs int64
	for _, a := range apps {
		mem, cpu, err := appLimits(a)
		if err != nil {
			return vmSize{}, err
		}
		if mem < 0 {
			s.MemoryMiB += defaultAppMemoryMiB
		} else {
			s.MemoryMiB += int((mem + 1<<20 - 1) >> 20)
		}
		if cpu < 0 {
			milliCPUs += 1000
		} else {
			milliCPUs += cpu
		}
	}
	s.VCPUs = int((milliCPUs + 999) / 1000)
	s.VCPUs = max(1, min(s.VCPUs, hostCPUs))
	return s, nil
}

// appLimits returns an app's memory limit in bytes and CPU limit in
// millicores, each -1 when the app sets none.
func appLimits(a stage1.App) (memBytes, milliCPUs int64, err error) {
	memBytes, milliCPUs = -1, -1
	for _, iso := range a.Isolators {
		switch v := iso.Value().(type) {
		case *types.ResourceMemory:
			if l := v.Limit(); l != nil {
				memBytes = l.Value()
			}
		case *types.ResourceCPU:
			if l := v.Limit(); l != nil {
				milliCPUs = l.MilliValue()
			}
		}
	}
	if memBytes == 0 || milliCPUs == 0 {
		return 0, 0, fmt.Errorf("app %s: a zero resource/memory or resource/cpu limit cannot run; remove the isolator or give a positive limit", a.Name)
	}
	return memBytes, milliCPUs, nil
}

// hostCPUs is the number of CPUs QEMU may use.
func hostCPUs() int { return runtime.NumCPU() }
