package tests

import (
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"rkt.dev/rkt/stage1/supervisor"
	"rkt.dev/rkt/tests/testutil"
)

// Functional tests of what only the nspawn stage1 does: networks, user
// namespaces, the pod's cgroups and a missing systemd-nspawn. The
// conformance suite (stage1-nspawn/nspawn_test.go) covers the rest.

// nspawnCtx is a fresh rkt installation for nspawn pods, and the stage1.
func nspawnCtx(t *testing.T) (*testutil.Ctx, string) {
	t.Helper()
	testutil.RequireRoot(t)
	c := testutil.New(t)
	return c, c.Stage1("nspawn")
}

// nspawnArgs is a `rkt run` of the nspawn stage1 saving the UUID to
// uuidFile, followed by args.
func nspawnArgs(stage1, uuidFile string, args ...string) []string {
	return append([]string{"run", "--insecure-options=image", "--stage1-path=" + stage1, "--uuid-file-save=" + uuidFile}, args...)
}

// hostIPv4 is what the inspector's --print-ipv4 prints in the host's
// network namespace.
func hostIPv4(t *testing.T) string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	var ips []string
	for _, a := range addrs {
		if ipnet, ok := a.(*net.IPNet); ok && !ipnet.IP.IsLoopback() && ipnet.IP.To4() != nil {
			ips = append(ips, ipnet.IP.String())
		}
	}
	return "ipv4=" + strings.Join(ips, ",")
}

// TestNspawnNetworks covers the modes that need no CNI: the CNI networks
// change the namespace they run in, so they are tested only inside
// namespaces the tests create (tests/network_test.go).
func TestNspawnNetworks(t *testing.T) {
	c, stage1 := nspawnCtx(t)
	cases := []struct {
		net, want string
		code      int
	}{
		{"none", "ipv4=", 0},
		{"host", hostIPv4(t), 0},
	}
	for _, tc := range cases {
		t.Run(tc.net, func(t *testing.T) {
			r := c.Run(nspawnArgs(stage1, c.UUIDFile(), "--net="+tc.net, c.Image("inspector"), "--", "--print-ipv4")...)
			if r.ExitCode != 0 || !testutil.HasLine(r.Stdout, tc.want) {
				t.Errorf("--net=%s: want %q: %v", tc.net, tc.want, r)
			}
		})
	}
	t.Run("unknown CNI network", func(t *testing.T) {
		r := c.Run(nspawnArgs(stage1, c.UUIDFile(), "--net=mynet", c.Image("inspector"), "--", "--print-ipv4")...)
		if r.ExitCode != 254 || !strings.Contains(r.Stderr, `network "mynet" not found`) {
			t.Errorf("--net=mynet: want exit code 254 saying the network is not found: %v", r)
		}
	})
}

// TestNspawnPrivateUsers: with --private-users, root in the pod is an
// unprivileged uid on the host, the pod still sees its files as owned by
// root, and what it writes is owned by the shifted uid on the host.
func TestNspawnPrivateUsers(t *testing.T) {
	c, stage1 := nspawnCtx(t)
	f := c.UUIDFile()
	r := c.Run(nspawnArgs(stage1, f, "--net=none", "--private-users", c.Image("inspector"), "--",
		"--print-user", "--read-file=/proc/self/uid_map", "--stat-file=/inspector", "--write-file=/written")...)
	if r.ExitCode != 0 || !testutil.HasLine(r.Stdout, "uid=0 gid=0 groups=") {
		t.Fatalf("want the app to run as root in its namespace: %v", r)
	}
	var inside, outside, count int
	if _, err := fmt.Sscanf(strings.SplitN(r.Stdout, "<<<", 2)[1], "%d %d %d", &inside, &outside, &count); err != nil || inside != 0 || outside == 0 || count != 65536 {
		t.Fatalf("want uid 0 mapped to an unprivileged range of 65536: %v (%v)", r, err)
	}
	if !strings.Contains(r.Stdout, "stat=/inspector type=file mode=0755 uid=0 gid=0") {
		t.Errorf("want the image's files owned by root inside the pod: %v", r)
	}
	uuid := c.ReadUUID(f)
	matches, _ := filepath.Glob(filepath.Join(c.DataDir(), "pods", "*", uuid, "apps", "inspector", "upper", "written"))
	if len(matches) != 1 {
		t.Fatalf("the app's write is not in its writable layer: %v", matches)
	}
	fi, err := os.Stat(matches[0])
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != outside {
		t.Errorf("a file the pod's root wrote is owned by host uid %d, want %d", st.Uid, outside)
	}
}

// TestNspawnGCReleasesCgroups: the pod's cgroups, including those of apps
// with limits, are gone after gc.
func TestNspawnGCReleasesCgroups(t *testing.T) {
	c, stage1 := nspawnCtx(t)
	f := c.UUIDFile()
	r := c.Run(nspawnArgs(stage1, f, "--net=none", c.Image("inspector"), "--memory=32Mi", "--cpu=200m", "--", "--print-memory-limit")...)
	if r.ExitCode != 0 || !testutil.HasLine(r.Stdout, "memory-limit=33554432") {
		t.Fatalf("want the memory limit applied: %v", r)
	}
	uuid := c.ReadUUID(f)
	if len(podCgroups(uuid)) == 0 {
		t.Fatalf("no cgroup named rkt-%s under /sys/fs/cgroup before gc", uuid)
	}
	c.RunOK("gc", "--grace-period=0s")
	if left := podCgroups(uuid); len(left) > 0 {
		t.Errorf("cgroups left after gc: %v", left)
	}
}

// podCgroups finds the cgroups of a pod in every hierarchy.
func podCgroups(uuid string) []string {
	var found []string
	filepath.WalkDir("/sys/fs/cgroup", func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && d.Name() == "rkt-"+uuid {
			found = append(found, p)
			return filepath.SkipDir
		}
		return nil
	})
	return found
}

// TestNspawnMissing: without systemd-nspawn the error names the package.
func TestNspawnMissing(t *testing.T) {
	c, stage1 := nspawnCtx(t)
	cmd := c.Cmd(nspawnArgs(stage1, c.UUIDFile(), "--net=none", c.Image("inspector"))...)
	cmd.Env = append(os.Environ(), "PATH="+t.TempDir())
	r := c.RunCmd(cmd)
	if r.ExitCode != 254 || !strings.Contains(r.Stderr, "install the Debian package systemd-container") {
		t.Errorf("want exit code 254 naming systemd-container: %v", r)
	}
}

// TestFlyRefusesPrivateUsers: fly runs apps as host users.
func TestFlyRefusesPrivateUsers(t *testing.T) {
	c := flyCtx(t)
	r := c.Run(flyRunArgs(c, "run", "", "--private-users", c.Image("inspector"))...)
	if r.ExitCode != 254 || !strings.Contains(r.Stderr, "--private-users needs --stage1-name=nspawn") {
		t.Errorf("want exit code 254 explaining --private-users: %v", r)
	}
}

// TestNspawnCgroupLayouts runs nspawn pods under the other cgroup layouts
// a host can have, made in a private mount namespace around rkt: unified
// (only the cgroup v2 hierarchy mounted, as on current distributions) and
// legacy (only v1 hierarchies, as on older ones). The host's own layout is
// what every other test runs on. A pod must run in each, and an app's
// memory limit must either be applied or refused with a clear error when
// no hierarchy there carries the memory controller: on a hybrid host, the
// memory controller is bound to its v1 hierarchy and the v2 one has none.
func TestNspawnCgroupLayouts(t *testing.T) {
	c, stage1 := nspawnCtx(t)
	hs, err := supervisor.OwnCgroups()
	if err != nil {
		t.Fatal(err)
	}
	memoryIn := func(unified bool) bool {
		for _, h := range hs {
			if h.Unified == unified && h.Has("memory") {
				return true
			}
		}
		return false
	}
	noV1, noV2 := "", ""
	if !slices.ContainsFunc(hs, func(h supervisor.CgroupHierarchy) bool { return !h.Unified }) {
		noV1 = "the host has no cgroup v1 hierarchy to keep"
	}
	if !slices.ContainsFunc(hs, func(h supervisor.CgroupHierarchy) bool { return h.Unified }) {
		// A legacy host's init uses v1 only: mounting cgroup2 alone
		// there makes a layout no real host has.
		noV2 = "the host mounts no cgroup v2 hierarchy"
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skipf("unshare (util-linux) is needed to make the layouts: %v", err)
	}
	cases := []struct {
		name string
		// setup makes the layout in the namespace; skip says why it
		// cannot be made on this host, if so.
		setup, skip string
		memory      bool
	}{
		{name: "unified", setup: "umount -R /sys/fs/cgroup && mount -t cgroup2 cgroup2 /sys/fs/cgroup", memory: memoryIn(true), skip: noV2},
		{name: "legacy", setup: "if mountpoint -q /sys/fs/cgroup/unified; then umount /sys/fs/cgroup/unified; fi",
			memory: memoryIn(false), skip: noV1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.skip != "" {
				t.Skip(tc.skip)
			}
			inLayout := func(args ...string) testutil.Result {
				cmd := c.Cmd(nspawnArgs(stage1, c.UUIDFile(), append([]string{"--net=none", c.Image("inspector")}, args...)...)...)
				cmd.Args = append([]string{"unshare", "--mount", "--propagation=private", "sh", "-ec", tc.setup + ` && exec "$@"`, "sh"}, cmd.Args...)
				cmd.Path = unshare
				return c.RunCmd(cmd)
			}
			if r := inLayout("--", "--print-msg=running"); r.ExitCode != 0 || !testutil.HasLine(r.Stdout, "running") {
				t.Fatalf("a pod without limits: want it to run: %v", r)
			}
			r := inLayout("--memory=32Mi", "--", "--print-memory-limit")
			switch {
			case tc.memory && (r.ExitCode != 0 || !testutil.HasLine(r.Stdout, "memory-limit=33554432")):
				t.Errorf("the memory controller is available: want the limit applied: %v", r)
			case !tc.memory && (r.ExitCode != 254 || !strings.Contains(r.Stderr, "no cgroup hierarchy with the memory controller")):
				t.Errorf("no hierarchy has the memory controller: want exit code 254 saying so: %v", r)
			}
		})
	}
}
