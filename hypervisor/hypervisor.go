// Package hypervisor is the seam between the KVM stage1 and the program
// that runs its VM. It holds what a driver is asked to boot (Config), what
// a running VM offers (VM) and how a VM ended (ExitState); drivers, such as
// hypervisor/qemu, keep everything hypervisor-specific (command lines,
// monitor protocols) to themselves.
package hypervisor

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"rkt.dev/rkt/hypervisor/transport"
)

// Machine is the virtual machine model.
type Machine string

// Machine models.
const (
	// MicroVM has no PCI and no firmware: virtio-mmio devices and a
	// direct PVH kernel entry. It boots fastest and is the default.
	MicroVM Machine = "microvm"
	// Q35 is a PC with PCIe, for guests or devices that need PCI.
	Q35 Machine = "q35"
)

// Accel is the CPU accelerator.
type Accel string

// Accelerators.
const (
	// KVM runs guest code on the CPU through /dev/kvm.
	KVM Accel = "kvm"
	// TCG emulates the CPU in software: works anywhere, many times slower.
	TCG Accel = "tcg"
)

// KVMDevice is the device KVM needs.
const KVMDevice = "/dev/kvm"

// DetectAccel returns KVM when /dev/kvm can be opened for reading and
// writing (existing is not enough: a missing group membership or a
// container's device cgroup leaves it unusable), else TCG. With TCG it also
// returns the one-line notice to show the user, saying why.
func DetectAccel() (Accel, string) {
	f, err := os.OpenFile(KVMDevice, os.O_RDWR, 0)
	if err != nil {
		return TCG, fmt.Sprintf("rkt: %s is not usable (%v); running the VM under TCG software emulation (slow)", KVMDevice, err)
	}
	f.Close()
	return KVM, ""
}

// Share is a host directory exported to the guest through virtio-fs. The
// caller runs virtiofsd for it; the driver only connects the VM to it.
type Share struct {
	// Tag is the name the guest mounts: mount -t virtiofs TAG /path.
	Tag string
	// Socket is virtiofsd's vhost-user socket; virtiofsd must be
	// listening on it before Start.
	Socket string
}

// Disk is a read-only raw image the guest sees as a virtio-blk disk.
type Disk struct {
	// Serial names the disk to the guest (/sys/block/vdX/serial); at most
	// 20 bytes.
	Serial string
	// Path is the image file.
	Path string
}

// Snapshot ties a VM to a VM template saved on the host: its guest RAM is
// the file Memory. A template (Restore false) maps it shared, so the
// guest's RAM ends up in the file, and VM.SaveSnapshot writes the state of
// its CPU and devices to State. A clone (Restore true) maps Memory
// privately, copy on write, and resumes from State instead of booting:
// clones share the template's pages until they write to them.
//
// A clone's machine must be its template's: memory size, vCPUs, agent
// transport (virtio-serial) and the number of disks (their files may
// differ; the guest reads the new ones once it drops its block cache).
// Neither may have vhost-user devices (virtio-fs shares, the userspace
// vsock device), whose state QEMU cannot save.
type Snapshot struct {
	// Memory is the guest RAM file.
	Memory string
	// State is the saved CPU and device state.
	State string
	// Restore makes the VM a clone, resumed from Memory and State.
	Restore bool
}

// NIC is a virtio network interface backed by a host tap device.
type NIC struct {
	// Tap is the name of an existing tap device, in the network namespace
	// the hypervisor runs in.
	Tap string
	// MAC is the guest interface's address; when empty the driver picks a
	// random locally administered one (never a fixed default, which would
	// clash between pods on one bridge).
	MAC net.HardwareAddr
}

// Config is what to boot. Memory and vCPU sizing is the caller's business;
// the driver takes the numbers as given.
type Config struct {
	// Binary is the hypervisor program; empty means the driver's default
	// looked up in PATH.
	Binary string
	// Kernel is the guest kernel (an uncompressed vmlinux with a PVH note).
	Kernel string
	// Initrd is the initramfs holding the guest agent as /init.
	Initrd string
	// Cmdline is appended to the kernel parameters the driver sets itself
	// (console, panic behaviour, clock calibration, quiet unless Debug).
	Cmdline string
	// MemoryMiB is the guest RAM in MiB.
	MemoryMiB int
	// VCPUs is the number of virtual CPUs.
	VCPUs int
	// Machine defaults to MicroVM.
	Machine Machine
	// Accel defaults to DetectAccel's choice.
	Accel Accel
	// Shares are the virtio-fs exports.
	Shares []Share
	// NICs are the network interfaces, in guest order (eth0 first).
	NICs []NIC
	// Disks are read-only images for the guest.
	Disks []Disk
	// Snapshot makes the VM a template or a clone of one.
	Snapshot *Snapshot
	// NetNS, when set, is the path of the network namespace the
	// hypervisor runs in: where its NICs' tap devices are.
	NetNS string
	// Agent is the agent transport; empty means transport.Choose's pick.
	Agent transport.Kind
	// Console receives the guest's serial console (kernel messages, and
	// whatever the agent prints on /dev/console). Nil discards it.
	Console io.Writer
	// RuntimeDir holds the VM's sockets (monitor, agent). It is created
	// if missing; empty means a new temporary directory, removed when the
	// VM has exited. Unix socket paths are limited to 107 bytes, so it
	// must be short: /run/rkt/<id> rather than a deep pod path.
	RuntimeDir string
	// Debug keeps kernel messages on the console (no "quiet").
	Debug bool
}

// VM is a running virtual machine.
type VM interface {
	// PID is the hypervisor process's ID (what stage1 writes to the pod's
	// pid file, and what a last-resort kill targets).
	PID() int
	// Info describes the choices made when starting the VM.
	Info() Info
	// DialAgent connects to the guest agent, retrying until ctx is done
	// while the agent is not reachable yet.
	DialAgent(ctx context.Context) (net.Conn, error)
	// Status asks the hypervisor for the VM's run state.
	Status(ctx context.Context) (Status, error)
	// Stop ends the VM. Unless force is set it first asks the guest to
	// power off (an ACPI power button press) and waits until ctx is done;
	// then, or at once with force, it tells the hypervisor to quit and
	// finally kills it. Each escalation step is bounded, so Stop returns
	// within a few seconds after ctx is done, and it returns nil once the
	// hypervisor process is gone.
	Stop(ctx context.Context, force bool) error
	// SaveSnapshot pauses a template VM (Config.Snapshot with Restore
	// false) for good and writes its state to Config.Snapshot.State; the
	// caller then stops it. Its RAM is already in Config.Snapshot.Memory.
	SaveSnapshot(ctx context.Context) error
	// Wait blocks until the hypervisor process has exited and reports
	// how. The error is nil for a clean guest power-off and for a stop
	// the host asked for, and describes the failure otherwise. It may be
	// called any number of times, from any goroutine.
	Wait() (ExitState, error)
}

// Info describes a started VM, for logs and --debug output.
type Info struct {
	// Accel is the accelerator in use.
	Accel Accel
	// Notice is the one line to show the user about the accelerator
	// (empty with KVM). The driver never prints it: the caller owns
	// stderr and prints it once.
	Notice string
	// Machine is the machine model in use.
	Machine Machine
	// Agent is the agent transport in use.
	Agent transport.Kind
	// AgentAddress says where the agent is reached (a vsock CID and port,
	// or a socket path).
	AgentAddress string
	// Memory says what backs guest RAM, and why not huge pages when
	// they could not be had.
	Memory string
	// Args is the hypervisor's command line.
	Args []string
}

// Status is a running VM's state as the hypervisor reports it.
type Status struct {
	// Running is true while guest code runs.
	Running bool
	// State is the hypervisor's name for the state, for example
	// "running", "paused", "shutdown" or "guest-panicked"; "exited" once
	// the hypervisor process is gone.
	State string
}

// ExitReason classifies how a VM ended.
type ExitReason int

// Exit reasons.
const (
	// ExitPoweroff: the guest powered the machine off (the normal end of
	// a pod, and the answer to a graceful Stop).
	ExitPoweroff ExitReason = iota + 1
	// ExitStopped: the host ended the VM (Stop forced it or the graceful
	// wait ran out, or the hypervisor was told to quit or terminate).
	ExitStopped
	// ExitGuestCrash: the guest kernel panicked, or reset the machine,
	// which an rkt guest never does on purpose (a triple fault, or a
	// panic with no pvpanic device to report it).
	ExitGuestCrash
	// ExitHypervisorFailed: the hypervisor process failed or was killed
	// without the host asking: a startup error, a crash, the OOM killer.
	ExitHypervisorFailed
)

// String names the reason for messages.
func (r ExitReason) String() string {
	switch r {
	case ExitPoweroff:
		return "guest powered off"
	case ExitStopped:
		return "stopped by the host"
	case ExitGuestCrash:
		return "guest crashed"
	case ExitHypervisorFailed:
		return "hypervisor failed"
	default:
		return fmt.Sprintf("ExitReason(%d)", int(r))
	}
}

// ExitState is how a VM ended.
type ExitState struct {
	// Reason classifies the end.
	Reason ExitReason
	// Detail explains it: the guest's panic message, or the hypervisor's
	// last error output.
	Detail string
	// ExitCode is the hypervisor process's exit status, or -1 when a
	// signal ended it.
	ExitCode int
	// Signal is the signal that ended the hypervisor process, if any.
	Signal syscall.Signal
}

// String describes the state in one line.
func (s ExitState) String() string {
	msg := s.Reason.String()
	if s.Signal != 0 {
		msg += fmt.Sprintf(" (hypervisor killed by %s)", unix.SignalName(s.Signal))
	} else if s.ExitCode != 0 {
		msg += fmt.Sprintf(" (hypervisor exit status %d)", s.ExitCode)
	}
	if s.Detail != "" {
		msg += ": " + s.Detail
	}
	return msg
}
