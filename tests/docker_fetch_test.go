package tests

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"rkt.dev/rkt/stage0/image/docker/dockertest"
	"rkt.dev/rkt/tests/testutil"
)

// storeIsEmpty fails the test if the store holds an image or a
// temporary file: what a refused fetch must leave.
func storeIsEmpty(t *testing.T, c *testutil.Ctx) {
	t.Helper()
	if ims := imageList(t, c); len(ims) != 0 {
		t.Errorf("the store holds %d images", len(ims))
	}
	des, err := os.ReadDir(filepath.Join(c.DataDir(), "cas", "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	if len(des) != 0 {
		t.Errorf("cas/tmp holds %d entries", len(des))
	}
}

// TestDockerFetchOnce checks that an image is downloaded once: later
// fetches by tag (pull policy update) only ask for the manifest, by digest
// or with pull policies new and never they ask nothing, and rkt run finds
// the image in the store.
func TestDockerFetchOnce(t *testing.T) {
	c := flyCtx(t)
	reg := startRegistry(t, false)
	img := busyboxImage(t, dockerLayer(t, layerFile("hello", "world")))
	reg.push(img, "once:1.0")
	p := newRegistryProxy(t, reg.Host)
	ref := "docker://" + p.Host + "/once:1.0"

	id := strings.TrimSpace(c.RunOK("fetch", "--insecure-options=image", ref).Stdout)
	if !imageIDRx.MatchString(id) {
		t.Fatalf("rkt fetch printed %q", id)
	}
	if n := len(p.requests("/blobs/")); n != 3 {
		t.Errorf("first fetch: %d blob requests, want 3 (config and 2 layers)", n)
	}
	digest, _ := img.Digest()
	byDigest := "docker://" + p.Host + "/once@" + digest.String()
	tests := []struct {
		name      string
		args      []string
		manifests int
	}{
		{"again, pull policy update", []string{"fetch", "--insecure-options=image", ref}, 1},
		{"pull policy new", []string{"fetch", "--insecure-options=image", "--pull-policy=new", ref}, 0},
		{"pull policy never", []string{"fetch", "--insecure-options=image", "--pull-policy=never", ref}, 0},
		{"by digest", []string{"fetch", "--insecure-options=image", byDigest}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p.reset()
			r := c.RunOK(tc.args...)
			if got := strings.TrimSpace(r.Stdout); got != id {
				t.Errorf("printed %q, want %s", got, id)
			}
			if b := p.requests("/blobs/"); len(b) != 0 {
				t.Errorf("downloaded blobs: %v", b)
			}
			if m := p.requests("/manifests/"); len(m) != tc.manifests {
				t.Errorf("manifest requests %v, want %d", m, tc.manifests)
			}
		})
	}
	p.reset()
	r := dockerRun(c, ref, "--exec", "/bin/cat", "--", "/hello")
	if r.ExitCode != 0 || r.Stdout != "world" {
		t.Errorf("rkt run: %v", r)
	}
	if all := p.requests(""); len(all) != 0 {
		t.Errorf("rkt run of a stored image asked the registry: %v", all)
	}
	if ims := imageList(t, c); len(ims) != 2 { // the image and the stage1
		t.Errorf("the store holds %d images, want 2", len(ims))
	}
	r = c.Run("fetch", "--insecure-options=image", "--pull-policy=never", "docker://"+p.Host+"/other:1")
	if r.ExitCode != 254 || !strings.Contains(r.Stderr, "--pull-policy=never") {
		t.Errorf("never, for an image not stored: %v", r)
	}
	if r := c.Run("fetch", "--pull-policy=sometimes", ref); r.ExitCode != 254 || !strings.Contains(r.Stderr, "new, update, never") {
		t.Errorf("bad pull policy: %v", r)
	}
}

// TestDockerFetchRefusals covers images rkt must refuse, with exit 254, a
// message naming what is wrong, and nothing left in the store.
func TestDockerFetchRefusals(t *testing.T) {
	c := testutil.New(t)
	reg := startRegistry(t, false)
	base := dockerLayer(t, layerDir("etc"), layerFile("etc/hostname", "x"))
	tests := []struct {
		name string
		img  v1.Image
		want []string
	}{
		{"dotdot path", dockerImage(t, v1.Config{}, base, dockerLayer(t, layerFile("../../../../tmp/evil", "x"))),
			[]string{"layer 2", `"../../../../tmp/evil"`, "escapes"}},
		{"escaping symlink", dockerImage(t, v1.Config{}, base, dockerLayer(t, layerSymlink("etc/evil", "../../../../etc/shadow"))),
			[]string{"layer 2", `"etc/evil"`, "symlink"}},
		{"absolute path", dockerImage(t, v1.Config{}, dockerLayer(t, layerFile("/etc/passwd", "x"))),
			[]string{"layer 1", `"/etc/passwd"`, "absolute"}},
		{"device node", dockerImage(t, v1.Config{}, dockerLayer(t, layerEntry{name: "dev/sda", typ: '4'})),
			[]string{"layer 1", `"dev/sda"`, "device"}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ref := reg.push(tc.img, fmt.Sprintf("bad:%d", i))
			r := c.Run("fetch", "--insecure-options=image", ref)
			if r.ExitCode != 254 {
				t.Fatalf("want exit code 254, got %v", r)
			}
			for _, w := range append(tc.want, ref) {
				if !strings.Contains(r.Stderr, w) {
					t.Errorf("stderr lacks %q: %s", w, r.Stderr)
				}
			}
			storeIsEmpty(t, c)
		})
	}
	if _, err := os.Lstat("/tmp/evil"); err == nil {
		t.Error("/tmp/evil was written")
	}
}

// TestDockerFetchNetworkFailures cuts a layer download mid-way and serves
// tampered content: each fetch fails cleanly, and a retry against an
// honest registry succeeds.
func TestDockerFetchNetworkFailures(t *testing.T) {
	c := testutil.New(t)
	reg := startRegistry(t, false)
	img := busyboxImage(t)
	ref := reg.push(img, "flaky:latest")
	p := newRegistryProxy(t, reg.Host)
	pref := "docker://" + p.Host + "/flaky:latest"
	layers, _ := img.Layers()
	bigDigest, _ := layers[0].Digest()
	otherImg := busyboxImage(t, dockerLayer(t, layerFile("x", "y")))
	otherDigest, _ := otherImg.Digest()
	reg.push(otherImg, "flaky:other")

	tests := []struct {
		name string
		ref  string
		hook func(w http.ResponseWriter, r *http.Request) bool
		want string
	}{
		{"connection dropped mid-layer", pref, func(w http.ResponseWriter, r *http.Request) bool {
			if !strings.HasSuffix(r.URL.Path, bigDigest.String()) {
				return false
			}
			if err := p.cutResponse(w, r); err != nil {
				t.Error(err)
			}
			return true
		}, "cut off"},
		{"layer with the wrong content", pref, func(w http.ResponseWriter, r *http.Request) bool {
			if !strings.HasSuffix(r.URL.Path, bigDigest.String()) {
				return false
			}
			resp, err := http.Get(p.upstream + r.URL.Path)
			if err != nil {
				t.Error(err)
				return false
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			b[len(b)/2] ^= 0xff // same length, other bytes
			w.Write(b)
			return true
		}, "corrupt or was tampered with"},
		{"manifest that does not match the digest asked for", "docker://" + p.Host + "/flaky@" + otherDigest.String(), func(w http.ResponseWriter, r *http.Request) bool {
			if !strings.Contains(r.URL.Path, "/manifests/") {
				return false
			}
			// Serve another image's manifest under the digest asked for.
			req, _ := http.NewRequest(r.Method, p.upstream+strings.Replace(r.URL.Path, otherDigest.String(), "latest", 1), nil)
			req.Header = r.Header
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return false
			}
			defer resp.Body.Close()
			for k, v := range resp.Header {
				if k != "Docker-Content-Digest" {
					w.Header()[k] = v
				}
			}
			w.WriteHeader(resp.StatusCode)
			io.Copy(w, resp.Body)
			return true
		}, "digest"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p.setHook(tc.hook)
			r := c.Run("fetch", "--insecure-options=image", tc.ref)
			p.setHook(nil)
			if r.ExitCode != 254 || !strings.Contains(r.Stderr, tc.want) {
				t.Fatalf("want exit code 254 and %q, got %v", tc.want, r)
			}
			storeIsEmpty(t, c)
			if r := c.Run("fetch", "--insecure-options=image", tc.ref); r.ExitCode != 0 {
				t.Errorf("retry: %v", r)
			}
			for _, im := range imageList(t, c) {
				c.RunOK("image", "rm", im.ID)
			}
		})
	}
	_ = ref
}

// TestDockerFetchAuth fetches from a registry that wants credentials,
// which come from a dockerAuth file in auth.d.
func TestDockerFetchAuth(t *testing.T) {
	c := testutil.New(t)
	reg := startRegistry(t, false)
	reg.push(busyboxImage(t), "private/app:1")
	p := newRegistryProxy(t, reg.Host)
	p.auth = "alice:s3cret"
	ref := "docker://" + p.Host + "/private/app:1"

	r := c.Run("fetch", "--insecure-options=image", ref)
	if r.ExitCode != 254 || !strings.Contains(r.Stderr, p.Host) || !strings.Contains(r.Stderr, "UNAUTHORIZED") {
		t.Fatalf("without credentials: want 254 naming the registry and UNAUTHORIZED, got %v", r)
	}
	dir := filepath.Join(c.LocalConfigDir(), "auth.d")
	os.MkdirAll(dir, 0o755)
	auth := fmt.Sprintf(`{"rktKind":"dockerAuth","rktVersion":"v1","registries":[%q],"credentials":{"user":"alice","password":"s3cret"}}`, p.Host)
	if err := os.WriteFile(filepath.Join(dir, "registry.json"), []byte(auth), 0o600); err != nil {
		t.Fatal(err)
	}
	c.RunOK("fetch", "--insecure-options=image", ref)
}

// TestDockerLocalSources fetches the same image from an OCI layout and a
// docker-archive, and runs one of them.
func TestDockerLocalSources(t *testing.T) {
	c := flyCtx(t)
	img := busyboxImage(t, dockerLayer(t, layerFile("origin", "local")))
	oci, archive := dockertest.LocalSources(t, img, t.TempDir(), "v1", "example.com/tools/busybox:1.36")
	for _, tc := range []struct{ ref, name string }{
		{"oci-layout:" + oci + ":v1", "oci-layout/oci:v1"},
		{"docker-archive:" + archive, "example.com/tools/busybox:1.36"},
	} {
		t.Run(tc.ref, func(t *testing.T) {
			if r := c.Run("fetch", tc.ref); r.ExitCode != 254 || !strings.Contains(r.Stderr, "--insecure-options=image") {
				t.Errorf("without --insecure-options=image: %v", r)
			}
			c.RunOK("fetch", "--insecure-options=image", tc.ref)
			r := dockerRun(c, tc.name, "--exec", "/bin/cat", "--", "/origin")
			if r.ExitCode != 0 || r.Stdout != "local" {
				t.Errorf("running %s: %v", tc.name, r)
			}
		})
	}
}

// TestDockerProgress checks the two kinds of progress output: plain lines
// when stderr is not a terminal, bars drawn on a terminal.
func TestDockerProgress(t *testing.T) {
	c := testutil.New(t)
	reg := startRegistry(t, false)
	ref := reg.push(busyboxImage(t, dockerLayer(t, layerFile("a", "b"))), "progress:1")

	r := c.RunOK("fetch", "--insecure-options=image", ref)
	lines := strings.Split(strings.TrimSpace(r.Stderr), "\n")
	for _, want := range []string{"downloading layer 1/2", "downloading layer 2/2", "converting " + ref} {
		if !strings.Contains(r.Stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.Stderr)
		}
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "rkt: ") || strings.Contains(l, "\x1b") {
			t.Errorf("not a plain progress line: %q", l)
		}
	}

	c.RunOK("image", "rm", strings.TrimSpace(r.Stdout))
	// A terminal has a size; bars are drawn to fit it.
	master, slave := testutil.OpenPTY(t, 24, 100)
	cmd := c.Cmd("fetch", "--insecure-options=image", ref)
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, slave
	var (
		tty bytes.Buffer
		wg  sync.WaitGroup
	)
	wg.Go(func() { io.Copy(&tty, master) })
	if err := runWithTimeout(cmd, time.Minute); err != nil {
		t.Fatalf("rkt fetch on a terminal: %v\n%s", err, tty.String())
	}
	slave.Close()
	wg.Wait()
	if !strings.HasPrefix(stdout.String(), "sha512-") {
		t.Errorf("stdout = %q, want the image ID", stdout.String())
	}
	for _, want := range []string{"layer 1/2", "layer 2/2", "done"} {
		if !strings.Contains(tty.String(), want) {
			t.Errorf("the terminal shows no %q:\n%q", want, tty.String())
		}
	}
}

// runWithTimeout runs cmd, killing it if it outlives d.
func runWithTimeout(cmd *exec.Cmd, d time.Duration) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	timer := time.AfterFunc(d, func() { cmd.Process.Kill() })
	defer timer.Stop()
	return cmd.Wait()
}
