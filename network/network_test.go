package network

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"rkt.dev/rkt/internal/netns"
	"rkt.dev/rkt/stage1"
)

// envInNetns marks the test binary re-executed in its own network
// namespace: CNI plugins create veths, routes and iptables rules in the
// namespace they run in, and a test must never touch the host's.
const envInNetns = "RKT_NETWORK_TEST_IN_NETNS"

func TestMain(m *testing.M) {
	if os.Getuid() == 0 && os.Getenv(envInNetns) == "" {
		if _, err := exec.LookPath("unshare"); err == nil {
			cmd := exec.Command("unshare", append([]string{"--net", "--", os.Args[0]}, os.Args[1:]...)...)
			cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
			cmd.Env = append(os.Environ(), envInNetns+"=1")
			if err := cmd.Run(); err != nil {
				if ee, ok := err.(*exec.ExitError); ok {
					os.Exit(ee.ExitCode())
				}
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			os.Exit(0)
		}
	}
	os.Exit(m.Run())
}

func requireNetworkTest(t *testing.T) {
	t.Helper()
	if os.Getenv(envInNetns) == "" {
		t.Skip("needs root and unshare(1) to run in a private network namespace")
	}
	for _, p := range []string{"ptp", "host-local", "portmap"} {
		if _, err := os.Stat(filepath.Join(DefaultPluginDirs[0], p)); err != nil {
			t.Skipf("CNI plugin %s missing: install containernetworking-plugins", p)
		}
	}
}

// hostState is what a pod's network may change on the host side.
func hostState(t *testing.T, dataDir string) string {
	t.Helper()
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range links {
		names = append(names, l.Attrs().Name)
	}
	ipt, _ := exec.Command("iptables-save").Output()
	var rules []string
	for _, l := range strings.Split(string(ipt), "\n") {
		if strings.HasPrefix(l, "-A") || strings.HasPrefix(l, ":CNI") {
			rules = append(rules, l)
		}
	}
	leases, _ := filepath.Glob(filepath.Join(dataDir, "networks", "ipam", "*", "1*"))
	return fmt.Sprintf("links=%v\nrules=%v\nleases=%v", names, rules, leases)
}

func newPod(t *testing.T, dataDir string) Pod {
	t.Helper()
	dir := filepath.Join(dataDir, "pods", "run", "p")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return Pod{UUID: "5b0a5a6e-0000-4000-8000-" + fmt.Sprintf("%012d", time.Now().UnixNano()%1e12), Dir: stage1.PodDir(dir), DataDir: dataDir}
}

func TestSetupReachTeardown(t *testing.T) {
	requireNetworkTest(t)
	dataDir := t.TempDir()
	before := hostState(t, dataDir)
	pod := newPod(t, dataDir)
	ctx := context.Background()
	spec, _ := ParseNets("default")
	info, err := Setup(ctx, pod, spec, Options{})
	if err != nil {
		Teardown(ctx, pod, Options{})
		t.Fatal(err)
	}
	t.Cleanup(func() { Teardown(ctx, pod, Options{}) })
	a := info.Attachments[0]
	if !strings.HasPrefix(a.IP, "172.16.28.") || a.Gateway == "" || a.MAC == "" || a.MTU == 0 {
		t.Fatalf("attachment %+v lacks address, gateway, MAC or MTU", a)
	}
	saved, err := Load(pod.Dir)
	if err != nil || saved.Attachments[0].IP != a.IP {
		t.Fatalf("net-info.json: %+v, %v", saved, err)
	}

	// The pod's address answers from outside the pod's namespace.
	lnc := make(chan net.Listener, 1)
	if err := netns.Do(info.Netns, func() error {
		l, err := net.Listen("tcp", a.IPv4()+":8080")
		lnc <- l
		return err
	}); err != nil {
		t.Fatal(err)
	}
	l := <-lnc
	defer l.Close()
	go func() {
		if c, err := l.Accept(); err == nil {
			c.Write([]byte("pong"))
			c.Close()
		}
	}()
	c, err := net.DialTimeout("tcp", a.IPv4()+":8080", 5*time.Second)
	if err != nil {
		t.Fatalf("reaching the pod at %s: %v", a.IPv4(), err)
	}
	buf := make([]byte, 4)
	if _, err := c.Read(buf); err != nil || string(buf) != "pong" {
		t.Fatalf("read %q, %v", buf, err)
	}
	c.Close()

	taps, err := AttachTaps(info)
	if err != nil || len(taps) != 1 || taps[0].Name != "tap0" {
		t.Fatalf("AttachTaps = %+v, %v", taps, err)
	}
	if err := netns.Do(info.Netns, func() error {
		tap, err := netlink.LinkByName("tap0")
		if err != nil {
			return err
		}
		filters, err := netlink.FilterList(tap, netlink.MakeHandle(0xffff, 0))
		if err != nil || len(filters) != 1 {
			return fmt.Errorf("tap0 has filters %v (%v), want one redirect", filters, err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	if err := Teardown(ctx, pod, Options{}); err != nil {
		t.Fatal(err)
	}
	if err := Teardown(ctx, pod, Options{}); err != nil {
		t.Fatalf("second Teardown: %v", err)
	}
	if after := hostState(t, dataDir); after != before {
		t.Errorf("host state changed:\nbefore %s\nafter  %s", before, after)
	}
	if _, err := os.Stat(pod.Dir.Netns()); !os.IsNotExist(err) {
		t.Errorf("netns file left behind: %v", err)
	}
}

func TestUnknownNetwork(t *testing.T) {
	requireNetworkTest(t)
	dataDir := t.TempDir()
	pod := newPod(t, dataDir)
	spec, _ := ParseNets("nosuchnet")
	_, err := Setup(context.Background(), pod, spec, Options{ConfDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), `network "nosuchnet" not found`) {
		t.Fatalf("error %v, want network not found", err)
	}
	if err := Teardown(context.Background(), pod, Options{}); err != nil {
		t.Fatal(err)
	}
}
