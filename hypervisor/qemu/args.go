package qemu

import (
	"fmt"
	"strings"

	"rkt.dev/rkt/hypervisor"
	"rkt.dev/rkt/hypervisor/transport"
)

// launch is a Config with every choice resolved (accelerator, transport,
// vsock CID, socket paths, host clock), so that building the command line
// is a pure function that tests can call with fixed values.
type launch struct {
	hypervisor.Config
	// qmpSocket is the QMP monitor's Unix socket.
	qmpSocket string
	// agentSocket is the host's Unix socket to the agent: QEMU's for the
	// virtio-serial port, the userspace vsock device's (Firecracker
	// protocol) for transport.UserspaceVsock.
	agentSocket string
	// vsockSocket is the userspace vsock device's vhost-user socket.
	vsockSocket string
	// cid is the guest's vsock context ID.
	cid uint32
	// tscKHz is the host TSC frequency passed to a TCG guest.
	tscKHz int
	// vhostNet is true when tap NICs can use the vhost-net accelerator.
	vhostNet bool
	// macs are the NICs' MAC addresses, random ones filled in.
	macs []string
	// hugeRAM is true when QEMU inherits the guest RAM file (guestram.go)
	// as descriptor ramFD; otherwise guest RAM is a memfd.
	hugeRAM bool
}

// sandbox confines QEMU with seccomp: no obsolete system calls, no
// privilege changes, no fork/exec, no scheduler or CPU-affinity changes.
// QEMU 7.2 accepts all four options and runs TCG guests under them.
const sandbox = "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"

// args builds QEMU's command line (without the program name).
func args(l launch) []string {
	microvm := l.Machine == hypervisor.MicroVM
	// device names the virtio-mmio flavour of a device on microvm and the
	// PCI one on q35.
	device := func(name string) string {
		if microvm {
			return name + "-device"
		}
		return name + "-pci"
	}

	a := []string{
		"-nodefaults", "-no-user-config", "-nographic",
		// A guest reboot is a crash for rkt (the kernel reboots on
		// panic=-1): end QEMU instead of booting the pod again.
		"-no-reboot",
		// A panic reported through pvpanic exits with status 1 at once,
		// a second signal beside the GUEST_PANICKED event.
		"-action", "panic=exit-failure",
		"-sandbox", sandbox,
		// Start paused: the monitor is connected and listening for
		// events before the guest runs, so even an instant crash is seen.
		"-S",
	}
	memBackend := "memory-backend=mem"
	switch l.Machine {
	case hypervisor.MicroVM:
		// No PIT, PIC or option ROMs: PVH boot needs none of them and
		// every emulated device costs boot time. ACPI stays on for
		// power-off and the power button.
		a = append(a, "-machine", fmt.Sprintf("microvm,accel=%s,acpi=on,pit=off,pic=off,rtc=on,isa-serial=on,x-option-roms=off,%s", l.Accel, memBackend),
			// virtiofsd refuses legacy virtio, microvm's default.
			"-global", "virtio-mmio.force-legacy=false")
	case hypervisor.Q35:
		a = append(a, "-machine", fmt.Sprintf("q35,accel=%s,%s", l.Accel, memBackend))
	}
	cpu := "host"
	if l.Accel == hypervisor.TCG {
		cpu = TCGCPU
	}
	a = append(a,
		"-cpu", cpu,
		"-smp", fmt.Sprint(l.VCPUs),
		"-m", fmt.Sprintf("%dM", l.MemoryMiB),
		"-object", ramBackend(l),
		"-kernel", l.Kernel,
		"-initrd", l.Initrd,
		"-append", kernelParams(l),
		// The serial console goes to QEMU's stdout, which the driver
		// copies to Config.Console.
		"-chardev", "stdio,id=console,signal=off",
		"-serial", "chardev:console",
		"-chardev", "socket,id=qmp,path="+escape(l.qmpSocket)+",server=on,wait=off",
		"-mon", "chardev=qmp,mode=control",
		// Entropy for the guest's CRNG from the host's getrandom.
		"-device", device("virtio-rng"),
	)
	if microvm {
		// Found by the guest through ACPI (CONFIG_PVPANIC_MMIO).
		a = append(a, "-device", "pvpanic")
	} else {
		a = append(a, "-device", "pvpanic-pci")
	}

	switch l.Agent {
	case transport.Vsock:
		a = append(a, "-device", fmt.Sprintf("%s,guest-cid=%d", device("vhost-vsock"), l.cid))
	case transport.UserspaceVsock:
		// QEMU connects to the device's socket (in this process) at
		// startup; guest RAM is the shared memfd above.
		a = append(a,
			"-chardev", "socket,id=vsock,path="+escape(l.vsockSocket),
			"-device", userspaceVsockDevice(l.Machine)+",chardev=vsock")
	case transport.Serial:
		a = append(a,
			"-device", device("virtio-serial")+",id=agentbus",
			"-chardev", "socket,id=agent,path="+escape(l.agentSocket)+",server=on,wait=off",
			"-device", "virtserialport,bus=agentbus.0,chardev=agent,name="+transport.SerialPortName)
	}
	for i, s := range l.Shares {
		id := fmt.Sprintf("fs%d", i)
		a = append(a,
			"-chardev", fmt.Sprintf("socket,id=%s,path=%s", id, escape(s.Socket)),
			"-device", fmt.Sprintf("%s,chardev=%s,tag=%s", device("vhost-user-fs"), id, escape(s.Tag)))
	}
	for i, d := range l.Disks {
		id := fmt.Sprintf("disk%d", i)
		a = append(a,
			"-drive", fmt.Sprintf("if=none,id=%s,format=raw,readonly=on,file=%s", id, escape(d.Path)),
			"-device", fmt.Sprintf("%s,drive=%s,serial=%s", device("virtio-blk"), id, escape(d.Serial)))
	}
	if l.Snapshot != nil && l.Snapshot.Restore {
		// The state arrives over QMP (migrate-incoming), once the
		// monitor has set the capabilities the template was saved with.
		a = append(a, "-incoming", "defer")
	}
	for i, n := range l.NICs {
		id := fmt.Sprintf("net%d", i)
		vhost := "off"
		if l.vhostNet {
			vhost = "on"
		}
		a = append(a,
			"-netdev", fmt.Sprintf("tap,id=%s,ifname=%s,script=no,downscript=no,vhost=%s", id, escape(n.Tap), vhost),
			"-device", fmt.Sprintf("%s,netdev=%s,mac=%s", device("virtio-net"), id, l.macs[i]))
	}
	return a
}

// ramBackend is the guest RAM object. vhost-user back ends (virtiofsd, the
// userspace vsock device) map guest RAM, so it is shared memory rather
// than anonymous: the huge-page file of guestram.go when there is one,
// aligned to 2 MiB so that the host can map it with huge pages, or else a
// memfd. A template's RAM is its memory file, shared so that it holds the
// guest's memory; a clone maps that file privately.
func ramBackend(l launch) string {
	if s := l.Snapshot; s != nil {
		if s.Restore {
			// Opened by the driver and inherited: QEMU would create an
			// empty file in place of a template removed meanwhile.
			return fmt.Sprintf("memory-backend-file,id=mem,size=%dM,share=off,mem-path=/proc/self/fd/%d", l.MemoryMiB, memoryFD)
		}
		return fmt.Sprintf("memory-backend-file,id=mem,size=%dM,share=on,mem-path=%s", l.MemoryMiB, escape(s.Memory))
	}
	if l.hugeRAM {
		return fmt.Sprintf("memory-backend-file,id=mem,size=%dM,share=on,mem-path=/proc/self/fd/%d,align=2M", l.MemoryMiB, ramFD)
	}
	return fmt.Sprintf("memory-backend-memfd,id=mem,size=%dM,share=on", l.MemoryMiB)
}

// TCGCPU is the CPU model under TCG: the baseline x86-64 model plus RDRAND
// (so the guest's CRNG is ready at once and getrandom never blocks). No
// x2APIC: QEMU 7.2's TCG cannot emulate it, drops it and prints a warning
// at every start, which then showed in error messages. Not "max", whose
// every emulated feature can cost: measured with tests/bench/kvmboot, a pod
// took 1.20-1.23 s with "max" and 1.10-1.12 s with this model (the bare
// kernel boot 0.84 s against 0.80 s); "max" without AVX took 1.16 s,
// Nehalem 1.15 s. The likely reasons are XSAVE
// state at every guest context switch and Go's AVX2 memory copies, both
// emulated. Go binaries (GOAMD64=v1) and our kernel need nothing more.
const TCGCPU = "qemu64,+rdrand"

// kernelParams returns the kernel command line: the driver's parameters,
// then the caller's.
func kernelParams(l launch) string {
	p := []string{
		"console=ttyS0",
		// Reboot at once on panic; -no-reboot turns that into QEMU's exit.
		"panic=-1",
	}
	if l.Accel == hypervisor.TCG {
		// Under TCG the guest's TSC is the host's, ticking at the host's
		// rate. Early calibration against emulated timers intermittently
		// hangs, so the frequency is given; and the clocksource watchdog,
		// comparing it with late-delivered emulated ticks, would declare
		// it unstable after a second or so and fall back to jiffies for
		// the rest of the pod's life. Neither under KVM, where kvmclock
		// reports the exact frequency (an estimate would override it).
		p = append(p, fmt.Sprintf("tsc_early_khz=%d", l.tscKHz), "tsc=reliable")
	}
	if !l.Debug {
		p = append(p, "quiet")
	}
	if l.Cmdline != "" {
		p = append(p, l.Cmdline)
	}
	return strings.Join(p, " ")
}

// escape doubles commas, QEMU's way of quoting them inside an option value.
func escape(s string) string {
	return strings.ReplaceAll(s, ",", ",,")
}
