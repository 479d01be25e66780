package qemu

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"rkt.dev/rkt/hypervisor"
	"rkt.dev/rkt/hypervisor/transport"
	"rkt.dev/rkt/hypervisor/vmtest"
	"rkt.dev/rkt/tests/vsockguest/wire"
)

func TestArgsUserspaceVsock(t *testing.T) {
	tests := []struct {
		machine hypervisor.Machine
		device  string
	}{
		{hypervisor.MicroVM, "vhost-user-vsock-device,chardev=vsock"},
		{hypervisor.Q35, "vhost-user-vsock-pci,chardev=vsock"},
	}
	for _, tt := range tests {
		t.Run(string(tt.machine), func(t *testing.T) {
			argv := args(launch{
				Config: hypervisor.Config{
					Kernel: "/k/vmlinux", Initrd: "/k/initrd.gz", MemoryMiB: 256, VCPUs: 1,
					Machine: tt.machine, Accel: hypervisor.TCG, Agent: transport.UserspaceVsock,
				},
				qmpSocket: "/run/rkt/x/qmp.sock", agentSocket: "/run/rkt/x/agent.sock",
				vsockSocket: "/run/rkt/x,y/vsock.sock", cid: 3,
			})
			if !slices.Contains(option(argv, "-chardev"), "socket,id=vsock,path=/run/rkt/x,,y/vsock.sock") {
				t.Errorf("no vhost-user chardev in %q", option(argv, "-chardev"))
			}
			if !slices.Contains(option(argv, "-device"), tt.device) {
				t.Errorf("no %s in %q", tt.device, option(argv, "-device"))
			}
			// vhost-user maps guest RAM: it must be shared (a memfd
			// unless a huge-page file is passed).
			if !slices.Contains(option(argv, "-object"), "memory-backend-memfd,id=mem,size=256M,share=on") {
				t.Errorf("guest RAM is not a shared memfd: %q", option(argv, "-object"))
			}
			for _, a := range argv {
				if strings.Contains(a, "vhost-vsock") || strings.Contains(a, "virtserialport") {
					t.Errorf("argument %q of another transport", a)
				}
			}
		})
	}
}

func TestLacksDevice(t *testing.T) {
	tests := []struct {
		stderr, device string
		want           bool
	}{
		// QEMU 7.2 without the device.
		{"qemu-system-x86_64: -device vhost-user-vsock-device,chardev=vsock: 'vhost-user-vsock-device' is not a valid device model name\n", "vhost-user-vsock-device", true},
		{"qemu-system-x86_64: -device vhost-user-vsock-pci,chardev=vsock: 'vhost-user-vsock-pci' is not a valid device model name\n", "vhost-user-vsock-device", false},
		// The device exists but the back-end failed: no fallback.
		{"qemu-system-x86_64: -device vhost-user-vsock-device,chardev=vsock: Failed to read msg header. Read 0 instead of 12.\n", "vhost-user-vsock-device", false},
		{"", "vhost-user-vsock-device", false},
	}
	for _, tt := range tests {
		if got := lacksDevice(tt.stderr, tt.device); got != tt.want {
			t.Errorf("lacksDevice(%q, %s) = %v, want %v", tt.stderr, tt.device, got, tt.want)
		}
	}
}

// TestUserspaceVsockFallback runs a QEMU without vhost-user-vsock (a
// wrapper that refuses the device as such a QEMU does): the driver must
// start the VM with virtio-serial instead, and say so.
func TestUserspaceVsockFallback(t *testing.T) {
	qemu, err := exec.LookPath(DefaultBinary)
	if err != nil {
		t.Skipf("%s is not installed", DefaultBinary)
	}
	wrapper := filepath.Join(t.TempDir(), "qemu-without-vhost-user")
	script := `#!/bin/sh
case "$*" in *vhost-user-vsock-device*)
	echo "qemu-system-x86_64: -device vhost-user-vsock-device,chardev=vsock: 'vhost-user-vsock-device' is not a valid device model name" >&2
	exit 1;;
esac
exec ` + qemu + ` "$@"
`
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	vm, con, _ := boot(t, "echo", func(c *hypervisor.Config) {
		c.Binary, c.Agent = wrapper, transport.UserspaceVsock
	})
	if got := vm.Info().Agent; got != transport.Serial {
		t.Fatalf("Info.Agent = %s, want the %s fallback", got, transport.Serial)
	}
	agentEcho(t, vm, con, "over serial\n")
}

// TestAgentUserspaceVsock boots a VM whose agent channel is the
// in-process vsock device and talks to the guest through DialAgent, as
// stage1-kvm does.
func TestAgentUserspaceVsock(t *testing.T) {
	for _, machine := range []hypervisor.Machine{hypervisor.MicroVM, hypervisor.Q35} {
		t.Run(string(machine), func(t *testing.T) {
			initrd := vmtest.Initrd(t, "rkt.dev/rkt/tests/vsockguest")
			dir := shortTempDir(t)
			vm, con, _ := boot(t, "", func(c *hypervisor.Config) {
				c.Initrd, c.Machine, c.Agent, c.RuntimeDir = initrd, machine, transport.UserspaceVsock, dir
			})
			if info := vm.Info(); info.Agent != transport.UserspaceVsock || !strings.Contains(info.AgentAddress, "agent.sock") {
				t.Fatalf("Info: agent %s at %q", info.Agent, info.AgentAddress)
			}
			for i := range 2 {
				ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
				conn, err := vm.DialAgent(ctx)
				cancel()
				if err != nil {
					t.Fatalf("DialAgent #%d: %v\nconsole:\n%s", i+1, err, con)
				}
				conn.SetDeadline(time.Now().Add(bootTimeout))
				msg := fmt.Sprintf("ping %d", i)
				fmt.Fprintf(conn, "ECHO\n%s\n", msg)
				got, err := bufio.NewReader(conn).ReadString('\n')
				conn.Close()
				if err != nil || got != msg+"\n" {
					t.Fatalf("echo #%d = %q, %v\nconsole:\n%s", i+1, got, err, con)
				}
			}
			con.WaitFor(t, wire.Marker, nil, bootTimeout)
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			if err := vm.Stop(ctx, true); err != nil {
				t.Fatal(err)
			}
			waitExit(t, vm)
			// The device's sockets go with the VM.
			if left, _ := filepath.Glob(filepath.Join(dir, "*.sock")); len(left) != 0 {
				t.Errorf("sockets left behind: %v", left)
			}
		})
	}
}
