package qemu

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"rkt.dev/rkt/hypervisor"
	"rkt.dev/rkt/hypervisor/transport"
)

// option returns the values that follow every occurrence of flag in argv.
func option(argv []string, flag string) []string {
	var values []string
	for i := 0; i+1 < len(argv); i++ {
		if argv[i] == flag {
			values = append(values, argv[i+1])
		}
	}
	return values
}

func TestArgs(t *testing.T) {
	base := func(mod func(*launch)) launch {
		l := launch{
			Config: hypervisor.Config{
				Kernel: "/k/vmlinux", Initrd: "/k/initrd.gz", Cmdline: "rkt.debug=1",
				MemoryMiB: 512, VCPUs: 2,
				Machine: hypervisor.MicroVM, Accel: hypervisor.TCG, Agent: transport.Serial,
			},
			qmpSocket: "/run/rkt/x/qmp.sock", agentSocket: "/run/rkt/x/agent.sock",
			cid: 77, tscKHz: 2096033,
		}
		mod(&l)
		return l
	}
	mac := net.HardwareAddr{0x02, 0x65, 0x02, 0, 0, 1}

	tests := []struct {
		name     string
		launch   launch
		want     map[string][]string // flag -> values that must all be present
		wantNot  []string            // substrings no argument may contain
		wantArgs []string            // flags that must be present
	}{
		{
			name:   "microvm tcg serial",
			launch: base(func(*launch) {}),
			want: map[string][]string{
				"-machine": {"microvm,accel=tcg,acpi=on,pit=off,pic=off,rtc=on,isa-serial=on,x-option-roms=off,memory-backend=mem"},
				"-global":  {"virtio-mmio.force-legacy=false"},
				"-cpu":     {"qemu64,+rdrand"},
				"-smp":     {"2"},
				"-m":       {"512M"},
				"-object":  {"memory-backend-memfd,id=mem,size=512M,share=on"},
				"-kernel":  {"/k/vmlinux"},
				"-initrd":  {"/k/initrd.gz"},
				"-append":  {"console=ttyS0 panic=-1 tsc_early_khz=2096033 tsc=reliable quiet rkt.debug=1"},
				"-sandbox": {"on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"},
				"-action":  {"panic=exit-failure"},
				"-chardev": {
					"stdio,id=console,signal=off",
					"socket,id=qmp,path=/run/rkt/x/qmp.sock,server=on,wait=off",
					"socket,id=agent,path=/run/rkt/x/agent.sock,server=on,wait=off",
				},
				"-serial": {"chardev:console"},
				"-mon":    {"chardev=qmp,mode=control"},
				"-device": {
					"virtio-rng-device", "pvpanic",
					"virtio-serial-device,id=agentbus",
					"virtserialport,bus=agentbus.0,chardev=agent,name=rkt.agent",
				},
			},
			wantArgs: []string{"-nodefaults", "-no-user-config", "-nographic", "-no-reboot", "-S"},
			wantNot:  []string{"vsock", "-pci", "netdev", "vhost-user-fs"},
		},
		{
			name: "q35 kvm vsock debug",
			launch: base(func(l *launch) {
				l.Machine, l.Accel, l.Agent, l.Debug, l.Cmdline = hypervisor.Q35, hypervisor.KVM, transport.Vsock, true, ""
			}),
			want: map[string][]string{
				"-machine": {"q35,accel=kvm,memory-backend=mem"},
				"-cpu":     {"host"},
				"-append":  {"console=ttyS0 panic=-1"},
				"-device":  {"virtio-rng-pci", "pvpanic-pci", "vhost-vsock-pci,guest-cid=77"},
			},
			wantNot: []string{"tsc_early_khz", "tsc=reliable", "quiet", "force-legacy", "virtio-serial", "agent.sock", "microvm"},
		},
		{
			name: "microvm vsock",
			launch: base(func(l *launch) {
				l.Agent = transport.Vsock
			}),
			want:    map[string][]string{"-device": {"vhost-vsock-device,guest-cid=77"}},
			wantNot: []string{"virtserialport"},
		},
		{
			name:    "huge-page guest RAM",
			launch:  base(func(l *launch) { l.hugeRAM = true }),
			want:    map[string][]string{"-object": {"memory-backend-file,id=mem,size=512M,share=on,mem-path=/proc/self/fd/3,align=2M"}},
			wantNot: []string{"memfd"},
		},
		{
			name: "shares",
			launch: base(func(l *launch) {
				l.Shares = []hypervisor.Share{{Tag: "rootfs", Socket: "/run/fs0.sock"}, {Tag: "vol,1", Socket: "/run/a,b.sock"}}
			}),
			want: map[string][]string{
				"-chardev": {"socket,id=fs0,path=/run/fs0.sock", "socket,id=fs1,path=/run/a,,b.sock"},
				"-device":  {"vhost-user-fs-device,chardev=fs0,tag=rootfs", "vhost-user-fs-device,chardev=fs1,tag=vol,,1"},
			},
		},
		{
			name: "q35 shares",
			launch: base(func(l *launch) {
				l.Machine = hypervisor.Q35
				l.Shares = []hypervisor.Share{{Tag: "rootfs", Socket: "/run/fs0.sock"}}
			}),
			want: map[string][]string{"-device": {"vhost-user-fs-pci,chardev=fs0,tag=rootfs", "virtio-serial-pci,id=agentbus"}},
		},
		{
			name: "disks",
			launch: base(func(l *launch) {
				l.Disks = []hypervisor.Disk{{Serial: "r0", Path: "/var/a,b.erofs"}}
			}),
			want: map[string][]string{
				"-drive":  {"if=none,id=disk0,format=raw,readonly=on,file=/var/a,,b.erofs"},
				"-device": {"virtio-blk-device,drive=disk0,serial=r0"},
			},
			wantNot: []string{"-incoming"},
		},
		{
			name:    "template",
			launch:  base(func(l *launch) { l.Snapshot = &hypervisor.Snapshot{Memory: "/run/t/memory", State: "/run/t/state"} }),
			want:    map[string][]string{"-object": {"memory-backend-file,id=mem,size=512M,share=on,mem-path=/run/t/memory"}},
			wantNot: []string{"memfd", "-incoming"},
		},
		{
			name: "clone of a template",
			launch: base(func(l *launch) {
				l.Snapshot = &hypervisor.Snapshot{Memory: "/run/t/memory", State: "/run/t/state", Restore: true}
			}),
			want: map[string][]string{
				"-object":   {"memory-backend-file,id=mem,size=512M,share=off,mem-path=/proc/self/fd/4"},
				"-incoming": {"defer"},
			},
			wantNot: []string{"memfd"},
		},
		{
			name: "nics without vhost-net",
			launch: base(func(l *launch) {
				l.NICs = []hypervisor.NIC{{Tap: "tap0", MAC: mac}, {Tap: "tap1"}}
				l.macs = []string{mac.String(), "02:00:00:00:00:02"}
			}),
			want: map[string][]string{
				"-netdev": {"tap,id=net0,ifname=tap0,script=no,downscript=no,vhost=off", "tap,id=net1,ifname=tap1,script=no,downscript=no,vhost=off"},
				"-device": {"virtio-net-device,netdev=net0,mac=02:65:02:00:00:01", "virtio-net-device,netdev=net1,mac=02:00:00:00:00:02"},
			},
		},
		{
			name: "q35 nics with vhost-net",
			launch: base(func(l *launch) {
				l.Machine, l.Accel, l.vhostNet = hypervisor.Q35, hypervisor.KVM, true
				l.NICs = []hypervisor.NIC{{Tap: "tap0", MAC: mac}}
				l.macs = []string{mac.String()}
			}),
			want: map[string][]string{
				"-netdev": {"tap,id=net0,ifname=tap0,script=no,downscript=no,vhost=on"},
				"-device": {"virtio-net-pci,netdev=net0,mac=02:65:02:00:00:01"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			argv := args(tt.launch)
			for flag, values := range tt.want {
				got := option(argv, flag)
				for _, v := range values {
					if !slices.Contains(got, v) {
						t.Errorf("%s %q missing; have %q", flag, v, got)
					}
				}
			}
			for _, flag := range tt.wantArgs {
				if !slices.Contains(argv, flag) {
					t.Errorf("flag %s missing", flag)
				}
			}
			for _, bad := range tt.wantNot {
				for _, a := range argv {
					if strings.Contains(a, bad) {
						t.Errorf("argument %q contains %q", a, bad)
					}
				}
			}
		})
	}
}

// shares returns n virtio-fs shares with distinct tags.
func shares(n int) []hypervisor.Share {
	s := make([]hypervisor.Share, n)
	for i := range s {
		s[i] = hypervisor.Share{Tag: fmt.Sprintf("s%d", i), Socket: fmt.Sprintf("/run/fs%d.sock", i)}
	}
	return s
}

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	kernel := filepath.Join(dir, "vmlinux")
	initrd := filepath.Join(dir, "initrd")
	for _, f := range []string{kernel, initrd} {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	good := hypervisor.Config{
		Kernel: kernel, Initrd: initrd, MemoryMiB: 256, VCPUs: 1,
		Accel: hypervisor.TCG, Agent: transport.Serial, RuntimeDir: filepath.Join(dir, "run"),
	}
	tests := []struct {
		name    string
		mod     func(*hypervisor.Config)
		wantErr string
	}{
		{"defaults", func(*hypervisor.Config) {}, ""},
		{"missing kernel", func(c *hypervisor.Config) { c.Kernel = filepath.Join(dir, "nope") }, "kernel: stat"},
		{"no initrd", func(c *hypervisor.Config) { c.Initrd = "" }, "no initrd given"},
		{"small memory", func(c *hypervisor.Config) { c.MemoryMiB = 16 }, "below the 64 MiB"},
		{"no vcpus", func(c *hypervisor.Config) { c.VCPUs = 0 }, "vCPUs 0"},
		{"bad machine", func(c *hypervisor.Config) { c.Machine = "pc" }, `unknown machine "pc"`},
		{"bad accel", func(c *hypervisor.Config) { c.Accel = "hvf" }, `unknown accelerator "hvf"`},
		{"bad transport", func(c *hypervisor.Config) { c.Agent = "tcp" }, `unknown agent transport "tcp"`},
		{"share without socket", func(c *hypervisor.Config) { c.Shares = []hypervisor.Share{{Tag: "x"}} }, "share 0 needs"},
		{"nic without tap", func(c *hypervisor.Config) { c.NICs = []hypervisor.NIC{{}} }, "NIC 0 has no tap"},
		{"as many devices as microvm serves", func(c *hypervisor.Config) {
			c.Shares = shares(19)
			c.NICs = []hypervisor.NIC{{Tap: "t0"}, {Tap: "t1"}}
		}, ""},
		{"more devices than microvm serves", func(c *hypervisor.Config) { c.Shares = shares(22) }, "needs 24 virtio devices (22 virtio-fs shares, 0 disks, 0 network interfaces"},
		{"q35 has room", func(c *hypervisor.Config) { c.Machine = hypervisor.Q35; c.Shares = shares(30) }, ""},
		{"bad mac", func(c *hypervisor.Config) { c.NICs = []hypervisor.NIC{{Tap: "t", MAC: net.HardwareAddr{1}}} }, "not a 6-byte"},
		{"long runtime dir", func(c *hypervisor.Config) { c.RuntimeDir = filepath.Join(dir, strings.Repeat("d", 100)) }, "longer than the 107 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.mod(&cfg)
			l, notice, cleanup, err := resolve(cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("resolve error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer cleanup()
			wantMachine := cfg.Machine
			if wantMachine == "" {
				wantMachine = hypervisor.MicroVM
			}
			if l.Machine != wantMachine || l.Binary != DefaultBinary || l.Console == nil {
				t.Errorf("defaults not applied: machine %q binary %q console %v", l.Machine, l.Binary, l.Console)
			}
			if l.tscKHz <= 0 {
				t.Errorf("TSC frequency %d under TCG", l.tscKHz)
			}
			if !strings.Contains(notice, "TCG") {
				t.Errorf("notice %q does not mention TCG", notice)
			}
			if l.qmpSocket != filepath.Join(good.RuntimeDir, "qmp.sock") {
				t.Errorf("QMP socket %q", l.qmpSocket)
			}
		})
	}
}

func TestRandomMAC(t *testing.T) {
	for range 100 {
		mac, err := randomMAC()
		if err != nil {
			t.Fatal(err)
		}
		if mac[0]&0x01 != 0 || mac[0]&0x02 == 0 {
			t.Fatalf("%v is not a unicast, locally administered address", mac)
		}
	}
}

func TestRandomCID(t *testing.T) {
	for range 1000 {
		if cid := randomCID(); cid < 3 || cid == 1<<32-1 {
			t.Fatalf("CID %d is reserved", cid)
		}
	}
}

func TestHostTSCkHz(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	sysfs := write("tsc_freq_khz", "2500000\n")
	cpuinfo := write("cpuinfo", "processor\t: 0\nmodel name\t: X\ncpu MHz\t\t: 2096.033\n")
	noMHz := write("cpuinfo-arm", "processor\t: 0\nBogoMIPS\t: 50.00\n")
	badMHz := write("cpuinfo-bad", "cpu MHz\t\t: fast\n")
	missing := filepath.Join(dir, "missing")

	tests := []struct {
		name           string
		sysfs, cpuinfo string
		want           int
		wantErr        string
	}{
		{"sysfs wins", sysfs, cpuinfo, 2500000, ""},
		{"cpuinfo fallback", missing, cpuinfo, 2096033, ""},
		{"no cpu MHz", missing, noMHz, 0, `nor a "cpu MHz" line`},
		{"bad cpu MHz", missing, badMHz, 0, "bad"},
		{"nothing", missing, missing, 0, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := hostTSCkHz(tt.sysfs, tt.cpuinfo)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("hostTSCkHz = %d, %v; want %d", got, err, tt.want)
			}
		})
	}
}
