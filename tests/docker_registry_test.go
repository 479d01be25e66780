package tests

// Helpers of the Docker image tests: a Docker registry (Debian's
// docker-registry) started by the test on 127.0.0.1, an optional proxy in
// front of it that counts, tampers with or cuts requests, and images
// built here from busybox-static with go-containerregistry.

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	ggremote "github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"rkt.dev/rkt/stage0/image/docker/dockertest"
	"rkt.dev/rkt/tests/registry"
)

// dockerRegistry is a docker-registry process serving 127.0.0.1:port.
type dockerRegistry struct {
	t    *testing.T
	Host string // 127.0.0.1:port
}

// startRegistry starts docker-registry on 127.0.0.1, on port 5000 when
// preferred and free, else on a free port. The test's cleanup kills it.
func startRegistry(t *testing.T, prefer5000 bool) *dockerRegistry {
	t.Helper()
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		t.Skip("docker-registry is not installed (apt-get install docker-registry, or scripts/install-deps)")
	}
	host := "127.0.0.1:0"
	if prefer5000 && portFree(5000) {
		host = "127.0.0.1:5000"
	}
	addr, stop, err := registry.Start(bin, t.TempDir(), host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return &dockerRegistry{t: t, Host: addr}
}

func portFree(port int) bool {
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// push stores img as repoTag ("library/busybox:latest") and returns the
// docker:// reference to it.
func (r *dockerRegistry) push(img v1.Image, repoTag string) string {
	r.t.Helper()
	return pushTo(r.t, r.Host, img, repoTag)
}

func pushTo(t *testing.T, host string, img v1.Image, repoTag string) string {
	t.Helper()
	ref, err := name.ParseReference(host + "/" + repoTag)
	if err != nil {
		t.Fatal(err)
	}
	if err := ggremote.Write(ref, img); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	return "docker://" + ref.String()
}

// pushIndex stores a manifest list as repoTag.
func (r *dockerRegistry) pushIndex(idx v1.ImageIndex, repoTag string) string {
	r.t.Helper()
	ref, err := name.ParseReference(r.Host + "/" + repoTag)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := ggremote.WriteIndex(ref, idx); err != nil {
		r.t.Fatalf("pushing %s: %v", ref, err)
	}
	return "docker://" + ref.String()
}

// registryProxy is an HTTP proxy on 127.0.0.1 in front of a registry: it
// logs requests, can require basic auth, and lets a test answer requests
// itself (to cut or tamper with them).
type registryProxy struct {
	Host     string
	upstream string
	mu       sync.Mutex
	log      []string
	// auth, if set, is the "user:password" every request must carry.
	auth string
	// hook, if set, may answer a request itself (returning true).
	hook func(w http.ResponseWriter, r *http.Request) bool
}

func newRegistryProxy(t *testing.T, upstream string) *registryProxy {
	t.Helper()
	p := &registryProxy{upstream: "http://" + upstream}
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: upstream})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.log = append(p.log, r.Method+" "+r.URL.Path)
		auth, hook := p.auth, p.hook
		p.mu.Unlock()
		if auth != "" {
			user, pass, ok := r.BasicAuth()
			if !ok || user+":"+pass != auth {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
				return
			}
		}
		if hook != nil && hook(w, r) {
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.Host = strings.TrimPrefix(srv.URL, "http://")
	return p
}

func (p *registryProxy) setHook(h func(w http.ResponseWriter, r *http.Request) bool) {
	p.mu.Lock()
	p.hook = h
	p.mu.Unlock()
}

// requests returns the logged requests whose path contains part.
func (p *registryProxy) requests(part string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, r := range p.log {
		if strings.Contains(r, part) {
			out = append(out, r)
		}
	}
	return out
}

// reset forgets the logged requests.
func (p *registryProxy) reset() {
	p.mu.Lock()
	p.log = nil
	p.mu.Unlock()
}

// cutResponse answers with the first half of what upstream sent for r and
// then drops the connection, as a registry that dies mid-layer would.
func (p *registryProxy) cutResponse(w http.ResponseWriter, r *http.Request) error {
	resp, err := http.Get(p.upstream + r.URL.Path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	w.Header().Set("Content-Length", fmt.Sprint(resp.ContentLength))
	w.WriteHeader(http.StatusOK)
	if _, err := io.CopyN(w, resp.Body, resp.ContentLength/2); err != nil {
		return err
	}
	w.(http.Flusher).Flush()
	c, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		return err
	}
	return c.Close()
}

// layerEntry is one entry of a test layer.
type layerEntry struct {
	name     string
	typ      byte
	body     []byte
	link     string
	mode     int64
	uid, gid int
}

func layerFile(name, body string) layerEntry {
	return layerEntry{name: name, typ: tar.TypeReg, body: []byte(body)}
}
func layerDir(name string) layerEntry { return layerEntry{name: name, typ: tar.TypeDir} }
func layerSymlink(name, target string) layerEntry {
	return layerEntry{name: name, typ: tar.TypeSymlink, link: target}
}

// layer builds a gzip-compressed layer of entries, in order.
func dockerLayer(t *testing.T, entries ...layerEntry) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: e.mode,
			Uid: e.uid, Gid: e.gid, Size: int64(len(e.body)), ModTime: time.Unix(1e9, 0)}
		if hdr.Mode == 0 {
			hdr.Mode = 0o644
			if e.typ == tar.TypeDir {
				hdr.Mode = 0o755
			}
		}
		if e.typ != tar.TypeReg {
			hdr.Size = 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		tw.Write(e.body)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// busyboxLayer is busybox-static with every applet linked in /bin, and
// /etc/passwd and /etc/group with root (0) and user (1000).
func busyboxLayer(t *testing.T) v1.Layer {
	t.Helper()
	const bb = "/bin/busybox"
	body, err := os.ReadFile(bb)
	if err != nil {
		t.Skipf("busybox-static is not installed (%v)", err)
	}
	out, err := exec.Command(bb, "--list").Output()
	if err != nil {
		t.Fatalf("%s --list: %v", bb, err)
	}
	entries := []layerEntry{
		layerDir("bin"), {name: "bin/busybox", typ: tar.TypeReg, body: body, mode: 0o755},
		layerDir("etc"),
		layerFile("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n"),
		layerFile("etc/group", "root:x:0:\nuser:x:1000:\n"),
		{name: "tmp", typ: tar.TypeDir, mode: 0o1777}, layerDir("proc"), layerDir("sys"), layerDir("dev"), layerDir("root"),
	}
	applets := strings.Fields(string(out))
	sort.Strings(applets)
	for _, a := range applets {
		if a != "busybox" {
			entries = append(entries, layerSymlink("bin/"+a, "busybox"))
		}
	}
	return dockerLayer(t, entries...)
}

// dockerImage is a linux/amd64 image of layers with configuration cfg.
func dockerImage(t *testing.T, cfg v1.Config, layers ...v1.Layer) v1.Image {
	t.Helper()
	return dockerImageFor(t, "amd64", cfg, layers...)
}

func dockerImageFor(t *testing.T, arch string, cfg v1.Config, layers ...v1.Layer) v1.Image {
	return dockertest.Image(t, arch, cfg, layers...)
}

// busyboxImage is the busybox image of the Done-when: /bin/sh by default.
func busyboxImage(t *testing.T, extra ...v1.Layer) v1.Image {
	t.Helper()
	return dockerImage(t, v1.Config{Cmd: []string{"/bin/sh"}, Env: []string{"PATH=/bin"}},
		append([]v1.Layer{busyboxLayer(t)}, extra...)...)
}
