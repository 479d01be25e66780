package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"rkt.dev/rkt/tests/testutil"
)

// templateLine finds the template a --debug run made or resumed.
var templateLine = regexp.MustCompile(`stage1-kvm: (made|resumed) VM template (\S+)`)

// templateRun runs a kvm pod with --debug and returns rkt's result and
// what the run did with VM templates: "made DIR" and "resumed DIR" lines.
func (k *kvmPod) templateRun(env []string, args ...string) (testutil.Result, []string) {
	k.t.Helper()
	r, uuid := k.run(env, append([]string{"--debug"}, args...)...)
	k.checkReleased(uuid)
	var did []string
	for _, m := range templateLine.FindAllStringSubmatch(r.Stderr, -1) {
		did = append(did, m[1]+" "+m[2])
	}
	return r, did
}

// TestKVMTemplate: pods resume a VM template made by the first pod of
// their machine shape, a broken template is replaced while the pod boots,
// and clones share neither random numbers nor the template's clock.
func TestKVMTemplate(t *testing.T) {
	k := newKVM(t)
	if _, err := exec.LookPath("mkfs.erofs"); err != nil {
		t.Skip("templates need mkfs.erofs (apt-get install erofs-utils)")
	}
	busybox := k.Image("busybox")
	// A memory size no other test uses gives this test a template of its
	// own, which it may remove and break.
	shape := []string{busybox, "--memory=77M", "--exec=/bin/sh", "--", "-c"}
	script := "cat /proc/sys/kernel/random/uuid /proc/sys/kernel/random/boot_id"

	r, did := k.templateRun(nil, append(shape, script)...)
	if r.ExitCode != 0 || len(did) == 0 {
		t.Fatalf("first run: want it to use a VM template; did %q: %v", did, r)
	}
	dir := strings.Fields(did[len(did)-1])[1]
	if filepath.Dir(dir) != "/run/rkt/kvm-templates" {
		t.Fatalf("template %s is not in /run/rkt/kvm-templates", dir)
	}

	t.Run("made once, then resumed", func(t *testing.T) {
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		for i, want := range [][]string{{"made " + dir, "resumed " + dir}, {"resumed " + dir}} {
			r, did := k.templateRun(nil, append(shape, "true")...)
			if r.ExitCode != 0 || strings.Join(did, ",") != strings.Join(want, ",") {
				t.Errorf("run %d: did %q, want %q: %v", i+1, did, want, r)
			}
		}
	})

	t.Run("a broken template is replaced", func(t *testing.T) {
		if err := os.WriteFile(filepath.Join(dir, "state"), []byte("not a QEMU state"), 0o600); err != nil {
			t.Fatal(err)
		}
		r, _ := k.templateRun(nil, append(shape, "echo booted")...)
		if r.ExitCode != 0 || !strings.Contains(r.Stdout, "booted") || !strings.Contains(r.Stderr, "booting the VM instead") {
			t.Errorf("with a broken template: want the pod to boot instead and say so: %v", r)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("the broken template %s is still there (%v)", dir, err)
		}
		if r, did := k.templateRun(nil, append(shape, "true")...); r.ExitCode != 0 || len(did) != 2 || !strings.HasPrefix(did[0], "made ") {
			t.Errorf("next run: want a new template made and resumed; did %q: %v", did, r)
		}
	})

	t.Run("a template whose guest does not come back is replaced", func(t *testing.T) {
		// Zeroed RAM: the resumed vCPU runs into garbage and the guest
		// resets, which ends QEMU (-no-reboot).
		mem := filepath.Join(dir, "memory")
		fi, err := os.Stat(mem)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(mem, 0); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(mem, fi.Size()); err != nil {
			t.Fatal(err)
		}
		r, _ := k.templateRun(nil, append(shape, "echo booted")...)
		if r.ExitCode != 0 || !strings.Contains(r.Stdout, "booted") || !strings.Contains(r.Stderr, "booting the VM instead") {
			t.Errorf("with a template whose guest does not come back: want the pod to boot instead and say so: %v", r)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("the broken template %s is still there (%v)", dir, err)
		}
	})

	t.Run("clones do not repeat each other's random numbers", func(t *testing.T) {
		seen := map[string]bool{}
		for i := range 2 {
			r, did := k.templateRun(nil, append(shape, script)...)
			lines := strings.Fields(r.Stdout)
			if r.ExitCode != 0 || len(lines) != 2 || len(did) == 0 {
				t.Fatalf("run %d from a template: want a random UUID and a boot ID; did %q: %v", i+1, did, r)
			}
			for _, v := range lines {
				if seen[v] {
					t.Errorf("run %d printed %s again: clones of one template share their random state", i+1, v)
				}
				seen[v] = true
			}
		}
	})

	// The template was saved during an earlier run: without the host's
	// time, a clone's clock would be behind the start of its own run.
	t.Run("clones take the host's time", func(t *testing.T) {
		before := time.Now()
		r, did := k.templateRun(nil, k.Image("inspector"), "--memory=77M", "--", "--print-time")
		after := time.Now()
		guest, err := strconv.ParseInt(testutil.ParseKV(r.Stdout)["time"], 10, 64)
		if r.ExitCode != 0 || err != nil || len(did) == 0 {
			t.Fatalf("want the guest's time from a template; did %q: %v", did, r)
		}
		if g := time.Unix(0, guest); g.Before(before) || g.After(after) {
			t.Errorf("the guest's clock said %v, outside the run (%v to %v)", g, before, after)
		}
	})

	t.Run("pods templates cannot serve boot", func(t *testing.T) {
		tests := []struct {
			name string
			env  []string
			args []string
			why  string
		}{
			{"host volume", nil, []string{"--volume=data,kind=host,source=" + t.TempDir(), busybox, "--mount=volume=data,target=/data", "--exec=/bin/true"}, "kind=host volumes"},
			{"templates off", []string{"RKT_STAGE1_KVM_TEMPLATE=off"}, []string{busybox, "--exec=/bin/true"}, "RKT_STAGE1_KVM_TEMPLATE=off"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r, did := k.templateRun(tt.env, tt.args...)
				if r.ExitCode != 0 || len(did) > 0 || !strings.Contains(r.Stderr, "booting the VM, not resuming a template: "+tt.why) {
					t.Errorf("want a booted VM, for %q; did %q: %v", tt.why, did, r)
				}
			})
		}
	})
}
