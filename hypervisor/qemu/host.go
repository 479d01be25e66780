package qemu

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
)

// hostTSCkHz returns the host's TSC frequency in kHz, for the guest's
// tsc_early_khz under TCG.
//
// Some kernels export it in /sys/devices/system/cpu/cpu0/tsc_freq_khz; the
// others give only "cpu MHz" in /proc/cpuinfo. On hosts with an invariant
// TSC (constant_tsc, what TCG guests here run on) that line is the TSC rate
// as the host kernel calibrated it; with CPU frequency scaling it can be the
// current core clock instead, which is why the sysfs value wins when
// present. An estimate a few percent off only skews the guest's early
// timestamps: the guest kernel keeps time with its own clocksource.
func hostTSCkHz(sysfsFile, cpuinfo string) (int, error) {
	if b, err := os.ReadFile(sysfsFile); err == nil {
		if khz, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && khz > 0 {
			return khz, nil
		}
	}
	f, err := os.Open(cpuinfo)
	if err != nil {
		return 0, fmt.Errorf("reading the host TSC frequency: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, value, ok := strings.Cut(sc.Text(), ":")
		if !ok || strings.TrimSpace(key) != "cpu MHz" {
			continue
		}
		mhz, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil || mhz <= 0 {
			return 0, fmt.Errorf("reading the host TSC frequency: bad %q line in %s", sc.Text(), cpuinfo)
		}
		return int(math.Round(mhz * 1000)), nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("reading the host TSC frequency from %s: %w", cpuinfo, err)
	}
	return 0, fmt.Errorf("reading the host TSC frequency: neither %s nor a \"cpu MHz\" line in %s", sysfsFile, cpuinfo)
}

// HostTSCkHz returns this host's TSC frequency in kHz as the driver passes
// it to TCG guests (tsc_early_khz), for tests that start QEMU themselves.
func HostTSCkHz() (int, error) { return hostTSCkHz(tscSysfs, cpuinfo) }

// Where hostTSCkHz looks.
const (
	tscSysfs = "/sys/devices/system/cpu/cpu0/tsc_freq_khz"
	cpuinfo  = "/proc/cpuinfo"
)

// usable reports whether a device node can be opened for reading and
// writing, the access QEMU needs.
func usable(dev string) bool {
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		return false
	}
	f.Close()
	return true
}
