package tests

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"rkt.dev/rkt/tests/testutil"
)

// netPod is a kvm test whose every rkt command runs in a network
// namespace the test created: CNI plugins change links, routes and
// iptables rules in the namespace they run in, and a test must never
// change the host's. nsenter switches only the network namespace, so all
// of the test's rkt commands share one mount namespace and see the pods'
// netns bind mounts.
type netPod struct {
	*kvmPod
	netns string // path of the test's namespace
}

func newNetPod(t *testing.T) *netPod {
	t.Helper()
	k := newKVM(t)
	for _, tool := range []string{"ip", "nsenter", "iptables-save"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	if _, err := os.Stat("/usr/lib/cni/ptp"); err != nil {
		t.Skip("CNI plugins missing: apt-get install containernetworking-plugins")
	}
	b := make([]byte, 4)
	rand.Read(b)
	name := "rkt-test-" + hex.EncodeToString(b)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	n := &netPod{kvmPod: k, netns: "/run/netns/" + name}
	t.Cleanup(func() {
		// Collect the pods inside the namespace, where their CNI state
		// is, before the harness's own cleanup runs outside it.
		n.rkt("gc", "--grace-period=0s")
		exec.Command("ip", "netns", "del", name).Run()
	})
	n.sh("ip link set lo up")
	return n
}

// in wraps a command so that it runs in the test's namespace.
func (n *netPod) in(cmd *exec.Cmd) *exec.Cmd {
	cmd.Args = append([]string{"nsenter", "--net=" + n.netns, cmd.Path}, cmd.Args[1:]...)
	cmd.Path, _ = exec.LookPath("nsenter")
	return cmd
}

// rkt runs rkt in the test's namespace.
func (n *netPod) rkt(args ...string) testutil.Result {
	return n.RunCmd(n.in(n.Cmd(args...)))
}

// sh runs a shell command in the test's namespace and returns its output.
func (n *netPod) sh(script string) string {
	n.t.Helper()
	out, err := n.in(exec.Command("/bin/sh", "-c", script)).CombinedOutput()
	if err != nil {
		n.t.Fatalf("%s: %v: %s", script, err, out)
	}
	return string(out)
}

// hostState is what pods may change in the test's namespace and data dir.
func (n *netPod) hostState() string {
	n.t.Helper()
	links := n.sh("ip -o link | cut -d: -f2")
	// The portmap plugin's shared chains (CNI-HOSTPORT-*) are created once
	// per namespace and kept for every later pod, by design; what must go
	// is each pod's own rules and chains.
	rules := n.sh("iptables-save | grep '^-A' | grep -v -- '-j CNI-HOSTPORT-' | grep -v '^-A CNI-HOSTPORT-' | sort || true")
	leases, _ := filepath.Glob(filepath.Join(n.DataDir(), "networks", "ipam", "*", "[0-9]*"))
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	var netnsMounts []string
	for _, l := range strings.Split(string(mounts), "\n") {
		if strings.Contains(l, n.DataDir()) {
			netnsMounts = append(netnsMounts, l)
		}
	}
	return fmt.Sprintf("links:%s\nrules:%s\nleases:%v\nmounts:%v", links, rules, leases, netnsMounts)
}

// start runs a kvm pod in the background in the test's namespace.
func (n *netPod) start(args ...string) (*testutil.Process, string) {
	n.t.Helper()
	uuidFile := filepath.Join(n.t.TempDir(), "uuid")
	a := append([]string{"run", "--stage1-path=" + n.stage1, "--insecure-options=image", "--uuid-file-save=" + uuidFile}, args...)
	p := n.StartCmd(n.in(n.Cmd(a...)))
	return p, uuidFile
}

var ip4Re = regexp.MustCompile(`networks=\S*:ip4=([0-9.]+)`)

// podIP reads a running pod's address from `rkt status`.
func (n *netPod) podIP(uuid string) string {
	n.t.Helper()
	r := n.rkt("status", uuid)
	m := ip4Re.FindStringSubmatch(r.Stdout)
	if m == nil {
		n.t.Fatalf("rkt status shows no address: %v", r)
	}
	return m[1]
}

func TestNetKVMServeHTTPAndPort(t *testing.T) {
	n := newNetPod(t)
	testServeHTTPAndPort(t, n)
}

// TestNetNspawnServeHTTPAndPort is the same for nspawn pods, which join
// the same CNI networks through systemd-nspawn --network-namespace-path.
func TestNetNspawnServeHTTPAndPort(t *testing.T) {
	n := newNetPod(t)
	if _, err := exec.LookPath("systemd-nspawn"); err != nil {
		t.Skip("systemd-nspawn is not installed (apt-get install systemd-container)")
	}
	n.stage1 = n.Stage1("nspawn")
	testServeHTTPAndPort(t, n)
}

func testServeHTTPAndPort(t *testing.T, n *netPod) {
	before := n.hostState()
	server, uuidFile := n.start("--net=default", "--port=www:127.0.0.1:18080", n.Image("inspector"), "--", "--serve-http=:8080")
	server.Expect(`serving=`)
	uuid := n.uuid(uuidFile)
	ip := n.podIP(uuid)
	if !strings.HasPrefix(ip, "172.16.28.") {
		t.Errorf("pod address %s is not on the default network 172.16.28.0/24", ip)
	}
	for _, url := range []string{"http://" + ip + ":8080/", "http://127.0.0.1:18080/"} {
		out := n.sh("curl -s -m 20 -o /dev/null -w '%{http_code}' " + url)
		if out != "200" {
			t.Errorf("GET %s from the host: status %q, want 200", url, out)
		}
	}
	// A second pod on the same network reaches the first.
	r := n.rkt("run", "--stage1-path="+n.stage1, "--insecure-options=image", "--net=default", n.Image("inspector"), "--", "--get-http=http://"+ip+":8080/")
	if r.ExitCode != 0 || !strings.Contains(r.Stdout, "http-status=200") {
		t.Errorf("pod to pod: %v", r)
	}
	if r := n.rkt("stop", uuid); r.ExitCode != 0 {
		t.Fatalf("rkt stop: %v", r)
	}
	server.Wait()
	if r := n.rkt("gc", "--grace-period=0s"); r.ExitCode != 0 {
		t.Fatalf("rkt gc: %v", r)
	}
	if after := n.hostState(); after != before {
		t.Errorf("the namespace is not as before the pods ran:\nbefore %s\nafter  %s", before, after)
	}
}

func TestNetKVMModes(t *testing.T) {
	n := newNetPod(t)
	// An address in the test's namespace that only a routed pod reaches.
	// (A veth pair, since the host kernel may lack the dummy driver.)
	n.sh("ip link add rkt-out0 type veth peer name rkt-out1 && ip addr add 10.199.0.1/32 dev rkt-out0 && ip link set rkt-out0 up && ip link set rkt-out1 up")
	confDir := filepath.Join(n.LocalConfigDir(), "net.d")
	if err := os.MkdirAll(confDir, 0o755); err != nil {
		t.Fatal(err)
	}
	bridge := `{"cniVersion":"1.0.0","name":"testbr","type":"bridge","bridge":"rkttestbr0","isGateway":true,
	  "ipam":{"type":"host-local","subnet":"10.88.7.0/24","routes":[{"dst":"0.0.0.0/0"}]}}`
	if err := os.WriteFile(filepath.Join(confDir, "10-testbr.conf"), []byte(bridge), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, net string
		args      []string
		want      []string // regexps the pod's stdout must match
		wantExit  int
	}{
		{"none is loopback only", "--net=none", []string{"--print-ipv4"}, []string{`(?m)^ipv4=$`}, 0},
		{"restricted has no route out", "--net=default-restricted", []string{"--print-ipv4", "--get-http=http://10.199.0.1:9/"}, []string{`ipv4=172\.31\.`}, 1},
		{"custom bridge network", "--net=testbr", []string{"--print-ipv4"}, []string{`ipv4=10\.88\.7\.`}, 0},
		{"dns lands in resolv.conf", "--net=none", []string{"--read-file=/etc/resolv.conf"}, []string{`nameserver 10\.0\.0\.53`, `search example\.test`}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := []string{"run", "--stage1-path=" + n.stage1, "--insecure-options=image", c.net,
				"--dns=10.0.0.53", "--dns-search=example.test", n.Image("inspector"), "--"}
			r := n.rkt(append(args, c.args...)...)
			if r.ExitCode != c.wantExit {
				t.Fatalf("exit code %d, want %d: %v", r.ExitCode, c.wantExit, r)
			}
			for _, w := range c.want {
				if !regexp.MustCompile(w).MatchString(r.Stdout) {
					t.Errorf("output does not match %s: %v", w, r)
				}
			}
		})
	}
}

func TestNetKVMRefusesHostNetwork(t *testing.T) {
	n := newNetPod(t)
	r := n.rkt("run", "--stage1-path="+n.stage1, "--insecure-options=image", "--net=host", n.Image("inspector"))
	if r.ExitCode != 254 || !strings.Contains(r.Stderr, "cannot use --net=host") {
		t.Fatalf("want exit 254 explaining --net=host: %v", r)
	}
}

// TestNetGCLeavesNothing creates and collects 20 pods and checks that links,
// netns mounts, iptables rules and IPAM leases are back to where they
// started.
func TestNetGCLeavesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("boots 20 VMs")
	}
	n := newNetPod(t)
	before := n.hostState()
	for i := 0; i < 20; i++ {
		r := n.rkt("run", "--stage1-path="+n.stage1, "--insecure-options=image", "--net=default", "--port=www:18090", n.Image("inspector"))
		if r.ExitCode != 0 {
			t.Fatalf("pod %d: %v", i, r)
		}
	}
	if r := n.rkt("gc", "--grace-period=0s"); r.ExitCode != 0 {
		t.Fatalf("rkt gc: %v", r)
	}
	if after := n.hostState(); after != before {
		t.Errorf("20 pods left traces:\nbefore %s\nafter  %s", before, after)
	}
}
