package main

import (
	"bytes"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"rkt.dev/rkt/internal/mountinfo"
)

func TestRun(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	tests := []struct {
		name       string
		args       []string
		stdin      string
		wantCode   int
		wantStdout string
		wantStderr string // substring
	}{
		{
			name:       "actions run in the fixed order, not the argument order",
			args:       []string{"--exit-code=7", "--read-file=" + file, "--write-file=" + file, "--content=hi", "--print-msg=first"},
			wantCode:   7,
			wantStdout: "first\nwrote=" + file + "\n<<<hi>>>\n",
		},
		{
			name:       "print-env takes comma lists and repeats",
			args:       []string{"--print-env=INSPECTOR_A,INSPECTOR_UNSET", "--print-env=INSPECTOR_EMPTY"},
			wantStdout: "INSPECTOR_A=a b\nINSPECTOR_UNSET (unset)\nINSPECTOR_EMPTY=\n",
		},
		{
			name:       "stdin is copied unframed",
			args:       []string{"--print-stdin"},
			stdin:      "line1\nline2",
			wantStdout: "line1\nline2",
		},
		{
			name:       "stderr-msg goes to stderr",
			args:       []string{"--stderr-msg=oops"},
			wantStderr: "oops\n",
		},
		{
			name:       "a failing action stops the sequence with exit 1",
			args:       []string{"--read-file=" + filepath.Join(dir, "missing"), "--exit-code=3", "--sleep=1h"},
			wantCode:   1,
			wantStderr: "inspector: --read-file: open ",
		},
		{name: "unknown flag", args: []string{"--no-such-flag"}, wantCode: 2, wantStderr: "usage:"},
		{name: "positional argument", args: []string{"x"}, wantCode: 2, wantStderr: "unexpected arguments"},
		{name: "content without write-file", args: []string{"--content=x"}, wantCode: 2, wantStderr: "needs --write-file"},
		{name: "exit code out of range", args: []string{"--exit-code=256"}, wantCode: 2, wantStderr: "outside 0..255"},
		{name: "negative sleep", args: []string{"--sleep=-1s"}, wantCode: 2, wantStderr: "negative"},
		{name: "bad caps pid", args: []string{"--print-caps-pid=-2"}, wantCode: 2, wantStderr: "not a process ID"},
		{name: "caps of a missing process", args: []string{"--print-caps-pid=999999999"}, wantCode: 1, wantStderr: "inspector: --print-caps-pid: reading process status"},
		{name: "bad signal", args: []string{"--kill-self=NOPE"}, wantCode: 2, wantStderr: "unknown signal"},
		{name: "help", args: []string{"-h"}, wantCode: 0, wantStderr: "usage:"},
	}
	t.Setenv("INSPECTOR_A", "a b")
	t.Setenv("INSPECTOR_EMPTY", "")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tt.args, strings.NewReader(tt.stdin), &stdout, &stderr)
			if code != tt.wantCode {
				t.Errorf("exit code = %d, want %d (stderr %q)", code, tt.wantCode, stderr.String())
			}
			if stdout.String() != tt.wantStdout {
				t.Errorf("stdout = %q, want %q", stdout.String(), tt.wantStdout)
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("stderr = %q, want it to contain %q", stderr.String(), tt.wantStderr)
			}
		})
	}
}

func TestParseSignal(t *testing.T) {
	tests := []struct {
		in      string
		want    syscall.Signal
		wantErr bool
	}{
		{"SIGTERM", syscall.SIGTERM, false},
		{"term", syscall.SIGTERM, false},
		{"Usr1", syscall.SIGUSR1, false},
		{"9", syscall.SIGKILL, false},
		{"0", 0, true},
		{"65", 0, true},
		{"SIGNOPE", 0, true},
		{"", 0, true},
	}
	for _, tt := range tests {
		got, err := parseSignal(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parseSignal(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestFormatCaps(t *testing.T) {
	tests := []struct {
		name    string
		status  string
		want    string
		wantErr bool
	}{
		{
			name:   "full status excerpt",
			status: "Name:\tinspector\nCapInh:\t0000000000000000\nCapPrm:\t00000000a80425fb\nCapEff:\t00000000a80425fb\nCapBnd:\t000001ffffffffff\n",
			want:   "cap-effective=0x00000000a80425fb cap-permitted=0x00000000a80425fb cap-bounding=0x000001ffffffffff",
		},
		{
			name:   "short values are padded",
			status: "CapPrm:\t0\nCapEff:\t0\nCapBnd:\t3f\n",
			want:   "cap-effective=0x0000000000000000 cap-permitted=0x0000000000000000 cap-bounding=0x000000000000003f",
		},
		{name: "missing set", status: "CapPrm:\t0\nCapEff:\t0\n", wantErr: true},
		{name: "not hex", status: "CapPrm:\t0\nCapEff:\tzz\nCapBnd:\t0\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, err := parseStatus(strings.NewReader(tt.status))
			if err != nil {
				t.Fatal(err)
			}
			got, err := formatCaps(status)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("formatCaps() = %q, %v; want %q, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestStatusField(t *testing.T) {
	status, err := parseStatus(strings.NewReader("NoNewPrivs:\t1\nSeccomp:\t2\nSeccomp_filters:\t1\n"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		key, name, want string
		wantErr         bool
	}{
		{"NoNewPrivs", "no-new-privs", "no-new-privs=1", false},
		{"Seccomp", "seccomp", "seccomp=2", false},
		{"Missing", "missing", "", true},
	}
	for _, tt := range tests {
		got, err := statusField(tt.key, tt.name)(status)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("statusField(%q) = %q, %v; want %q, error %v", tt.key, got, err, tt.want, tt.wantErr)
		}
	}
}

// Mount tables seen on real hosts and in containers.
var (
	hybridMounts = []mountinfo.Mount{
		{MountPoint: "/sys/fs/cgroup/cpu,cpuacct", Root: "/", FSType: "cgroup", SuperOptions: []string{"rw", "cpu", "cpuacct"}},
		{MountPoint: "/sys/fs/cgroup/memory", Root: "/", FSType: "cgroup", SuperOptions: []string{"rw", "memory"}},
		{MountPoint: "/sys/fs/cgroup/systemd", Root: "/", FSType: "cgroup", SuperOptions: []string{"rw", "name=systemd"}},
		{MountPoint: "/sys/fs/cgroup/unified", Root: "/", FSType: "cgroup2", SuperOptions: []string{"rw"}},
	}
	// nspawn bind-mounts only the container's own subtree.
	nspawnMounts = []mountinfo.Mount{
		{MountPoint: "/sys/fs/cgroup/memory", Root: "/", FSType: "cgroup", SuperOptions: []string{"rw", "memory"}},
		{MountPoint: "/sys/fs/cgroup/memory", Root: "/machine.slice/pod", FSType: "cgroup", SuperOptions: []string{"rw", "memory"}},
	}
	v2Mounts = []mountinfo.Mount{
		{MountPoint: "/sys/fs/cgroup", Root: "/", FSType: "cgroup2", SuperOptions: []string{"rw", "nsdelegate"}},
	}
)

func TestCgroupDir(t *testing.T) {
	hybridCgroup := "9:name=systemd:/pod\n4:memory:/pod/app\n2:cpu,cpuacct:/pod/app\n0::/pod\n"
	tests := []struct {
		name       string
		procCgroup string
		mounts     []mountinfo.Mount
		controller string
		wantDir    string
		wantV2     bool
		wantErr    bool
	}{
		{"hybrid memory uses v1", hybridCgroup, hybridMounts, "memory", "/sys/fs/cgroup/memory/pod/app", false, false},
		{"hybrid co-mounted cpu", hybridCgroup, hybridMounts, "cpu", "/sys/fs/cgroup/cpu,cpuacct/pod/app", false, false},
		{"hybrid falls back to v2", hybridCgroup, hybridMounts, "pids", "/sys/fs/cgroup/unified/pod", true, false},
		{"name= hierarchy is not a controller", "9:name=systemd:/x\n", hybridMounts, "systemd", "", false, true},
		{"pure v2", "0::/system.slice/app\n", v2Mounts, "memory", "/sys/fs/cgroup/system.slice/app", true, false},
		{"v2 in a cgroup namespace", "0::/\n", v2Mounts, "cpu", "/sys/fs/cgroup", true, false},
		{"bind-mounted subtree wins over the whole tree", "4:memory:/machine.slice/pod/app\n", nspawnMounts, "memory", "/sys/fs/cgroup/memory/app", false, false},
		{"subtree root must match whole components", "4:memory:/machine.slice/pod2\n", nspawnMounts[1:], "memory", "", false, true},
		{"hierarchy not mounted", "4:memory:/x\n", v2Mounts[:0], "memory", "", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			entries, err := parseProcCgroup(strings.NewReader(tt.procCgroup))
			if err != nil {
				t.Fatal(err)
			}
			dir, v2, err := cgroupDir(entries, tt.mounts, tt.controller)
			if (err != nil) != tt.wantErr || dir != tt.wantDir || v2 != tt.wantV2 {
				t.Errorf("cgroupDir() = %q, %v, %v; want %q, %v, error %v", dir, v2, err, tt.wantDir, tt.wantV2, tt.wantErr)
			}
		})
	}
}

func TestParseProcCgroup(t *testing.T) {
	tests := []struct {
		in      string
		want    []cgroupEntry
		wantErr bool
	}{
		{
			in: "4:memory:/a:b\n0::/\n",
			want: []cgroupEntry{
				{hierarchy: 4, controllers: []string{"memory"}, path: "/a:b"},
				{hierarchy: 0, path: "/"},
			},
		},
		{in: "garbage\n", wantErr: true},
		{in: "x:memory:/\n", wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseProcCgroup(strings.NewReader(tt.in))
		if (err != nil) != tt.wantErr || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseProcCgroup(%q) = %+v, %v; want %+v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestFormatMemoryLimit(t *testing.T) {
	tests := []struct {
		raw, want string
		wantErr   bool
	}{
		{"max", "max", false},
		{"268435456", "268435456", false},
		{"9223372036854771712", "max", false}, // cgroup v1 "unlimited"
		{"lots", "", true},
	}
	for _, tt := range tests {
		got, err := formatMemoryLimit(tt.raw)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("formatMemoryLimit(%q) = %q, %v; want %q, error %v", tt.raw, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestFormatCPUQuota(t *testing.T) {
	tests := []struct {
		quota, period, want string
		wantErr             bool
	}{
		{"max", "100000", "max", false},
		{"-1", "100000", "max", false},
		{"50000", "100000", "500m", false},
		{"200000", "100000", "2000m", false},
		{"x", "100000", "", true},
		{"50000", "0", "", true},
		{"50000", "y", "", true},
	}
	for _, tt := range tests {
		got, err := formatCPUQuota(tt.quota, tt.period)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("formatCPUQuota(%q, %q) = %q, %v; want %q, error %v", tt.quota, tt.period, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestContainingMount(t *testing.T) {
	mounts := []mountinfo.Mount{
		{ID: 1, MountPoint: "/"},
		{ID: 2, MountPoint: "/data"},
		{ID: 3, MountPoint: "/data"}, // stacked on top of 2
		{ID: 4, MountPoint: "/data/sub"},
	}
	tests := []struct {
		path   string
		wantID int
	}{
		{"/", 1},
		{"/etc/hosts", 1},
		{"/data", 3},
		{"/data/file", 3},
		{"/database", 1},
		{"/data/sub/x", 4},
	}
	for _, tt := range tests {
		got, ok := containingMount(mounts, tt.path)
		if !ok || got.ID != tt.wantID {
			t.Errorf("containingMount(%q) = %d, %v; want %d", tt.path, got.ID, ok, tt.wantID)
		}
	}
	if _, ok := containingMount(nil, "/x"); ok {
		t.Error("containingMount(nil) found a mount")
	}
}
