package docker

import (
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	ggremote "github.com/google/go-containerregistry/pkg/v1/remote"

	"rkt.dev/rkt/stage0/image/aci"
	"rkt.dev/rkt/stage0/image/docker/dockertest"
	. "rkt.dev/rkt/stage0/image/internal/acitest"
	"rkt.dev/rkt/stage0/image/remote"
)

var passwd = File("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nwww:x:33:34:www:/var/www:/bin/false\n")
var group = File("etc/group", "root:x:0:\nwww-data:x:34:\nstaff:x:50:\n")

func TestFetchRegistry(t *testing.T) {
	reg := newRegistry(t)
	img := testImage(t, v1.Config{
		Entrypoint:   []string{"/bin/app"},
		Cmd:          []string{"--serve"},
		Env:          []string{"PATH=/usr/bin:/bin", "A=b=c"},
		WorkingDir:   "/srv",
		User:         "www",
		ExposedPorts: map[string]struct{}{"80/tcp": {}, "53/udp": {}},
		Volumes:      map[string]struct{}{"/var/lib/data": {}},
	},
		testLayer(t, Dir("etc"), passwd, group, Dir("bin"), File("bin/app", "v1"), File("bin/old", "x"), Dir("srv"), File("srv/gone", "g")),
		testLayer(t, File("bin/app", "v2"), File("bin/.wh.old", ""), Dir("srv"), File("srv/.wh..wh..opq", ""), File("srv/index", "i")),
	)
	ref := reg.push(img, "library/app:1.0")
	s := newStore(t)
	id, err := s.fetch(t, ref)
	if err != nil {
		t.Fatal(err)
	}
	im, err := s.opts.Store.Manifest(id)
	if err != nil {
		t.Fatal(err)
	}
	wantName := strings.ReplaceAll(reg.host, ":", "-") + "/library/app"
	if im.Name.String() != wantName {
		t.Errorf("name = %s, want %s", im.Name, wantName)
	}
	if v, _ := im.GetLabel("version"); v != "1.0" {
		t.Errorf("version label = %q, want 1.0", v)
	}
	app := im.App
	if got := strings.Join(app.Exec, " "); got != "/bin/app --serve" {
		t.Errorf("exec = %q", got)
	}
	if app.User != "33" || app.Group != "34" {
		t.Errorf("user:group = %s:%s, want 33:34 (www's ids from /etc/passwd)", app.User, app.Group)
	}
	if v, _ := app.Environment.Get("A"); v != "b=c" {
		t.Errorf("env A = %q", v)
	}
	if app.WorkingDirectory != "/srv" {
		t.Errorf("workingDirectory = %q", app.WorkingDirectory)
	}
	var ports []string
	for _, p := range app.Ports {
		ports = append(ports, p.Name.String()+"/"+p.Protocol)
	}
	if !slices.Equal(ports, []string{"53-udp/udp", "80-tcp/tcp"}) {
		t.Errorf("ports = %v", ports)
	}
	if len(app.MountPoints) != 1 || app.MountPoints[0].Name != "volume-var-lib-data" || app.MountPoints[0].Path != "/var/lib/data" {
		t.Errorf("mountPoints = %+v", app.MountPoints)
	}
	digest, _ := img.Digest()
	cfgName, _ := img.ConfigName()
	for k, want := range map[string]string{
		AnnotationRepository:   "library/app",
		AnnotationRegistryURL:  reg.host,
		AnnotationTag:          "1.0",
		AnnotationManifestHash: digest.String(),
		AnnotationImageID:      cfgName.String(),
		AnnotationEntrypoint:   `["/bin/app"]`,
		AnnotationCmd:          `["--serve"]`,
		AnnotationOriginalName: ref,
	} {
		if got, _ := im.Annotations.Get(k); got != want {
			t.Errorf("annotation %s = %q, want %q", k, got, want)
		}
	}

	root := s.render(t, id)
	for p, want := range map[string]string{"bin/app": "v2", "srv/index": "i", "bin/old": "", "srv/gone": ""} {
		b, err := os.ReadFile(filepath.Join(root, p))
		if want == "" {
			if !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s should have been whited out (%v)", p, err)
			}
			continue
		}
		if string(b) != want {
			t.Errorf("%s = %q, %v; want %q", p, b, err, want)
		}
	}
}

// A stored digest is never downloaded again; the pull policy decides
// whether the registry is asked at all.
func TestFetchPullPolicy(t *testing.T) {
	reg := newRegistry(t)
	ref := reg.push(testImage(t, v1.Config{Cmd: []string{"/bin/sh"}}, testLayer(t, File("a", "a")), testLayer(t, File("b", "b"))), "x/y:latest")
	s := newStore(t)

	s.opts.Policy = remote.PullNever
	if _, err := s.fetch(t, ref); err == nil || !strings.Contains(err.Error(), "--pull-policy=never") {
		t.Fatalf("never with an empty store: error = %v", err)
	}
	if r := reg.requests("/v2/"); len(r) != 0 {
		t.Errorf("--pull-policy=never asked the registry: %v", r)
	}

	s.opts.Policy = remote.PullUpdate
	id, err := s.fetch(t, ref)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(reg.requests("/blobs/")); n != 3 {
		t.Errorf("first fetch: %d blob requests, want 3 (config and 2 layers)", n)
	}
	reg.reset()
	for _, policy := range []remote.PullPolicy{remote.PullUpdate, remote.PullNew, remote.PullNever} {
		s.opts.Policy = policy
		again, err := s.fetch(t, ref)
		if err != nil || again != id {
			t.Fatalf("%s: fetch = %s, %v; want %s", policy, again, err, id)
		}
	}
	if r := reg.requests("/blobs/"); len(r) != 0 {
		t.Errorf("fetching a stored digest downloaded blobs: %v", r)
	}
	if r := reg.requests("/manifests/"); len(r) != 1 {
		t.Errorf("want exactly one manifest request (update), got %v", r)
	}

	// By digest: answered from the store without asking.
	reg.reset()
	digest, _ := mustImage(t, reg, ref).Digest()
	byDigest := "docker://" + reg.host + "/x/y@" + digest.String()
	s.opts.Policy = remote.PullUpdate
	if got, err := s.fetch(t, byDigest); err != nil || got != id {
		t.Fatalf("by digest: %s, %v; want %s", got, err, id)
	}
	if r := reg.requests("/v2/"); len(r) != 0 {
		t.Errorf("a stored digest asked the registry: %v", r)
	}
}

func mustImage(t *testing.T, reg *testRegistry, ref string) v1.Image {
	t.Helper()
	r, err := name.ParseReference(strings.TrimPrefix(ref, "docker://"))
	if err != nil {
		t.Fatal(err)
	}
	img, err := ggremote.Image(r)
	if err != nil {
		t.Fatal(err)
	}
	reg.reset()
	return img
}

func TestFetchManifestList(t *testing.T) {
	reg := newRegistry(t)
	arm := testImageFor(t, "arm64", v1.Config{}, testLayer(t, File("arch", "arm64")))
	amd := testImageFor(t, "amd64", v1.Config{}, testLayer(t, File("arch", "amd64")))
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
	)
	ref, err := name.ParseReference(reg.host + "/multi:latest")
	if err != nil {
		t.Fatal(err)
	}
	if err := ggremote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	s := newStore(t)
	id, err := s.fetch(t, "docker://"+ref.String())
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(s.render(t, id), "arch")); err != nil || string(b) != "amd64" {
		t.Errorf("arch = %q, %v; want the amd64 image", b, err)
	}
	// An index without linux/amd64 is refused with what it has.
	only := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}})
	ref2, _ := name.ParseReference(reg.host + "/armonly:latest")
	if err := ggremote.WriteIndex(ref2, only); err != nil {
		t.Fatal(err)
	}
	if _, err := s.fetch(t, "docker://"+ref2.String()); err == nil || !strings.Contains(err.Error(), "linux/arm64") {
		t.Errorf("error = %v; want one listing linux/arm64", err)
	}
}

func TestFetchLayoutAndArchive(t *testing.T) {
	img := testImage(t, v1.Config{Cmd: []string{"/bin/sh"}}, testLayer(t, File("a", "1")), testLayer(t, File("a", "2")))
	oci, archive := dockertest.LocalSources(t, img, t.TempDir(), "v1", "example.com/team/app:2.0")
	tests := []struct{ ref, name, version string }{
		{"oci-layout:" + oci + ":v1", "oci-layout/oci", "v1"},
		{"oci-layout:" + oci, "oci-layout/oci", "v1"},
		{"docker-archive:" + archive, "example.com/team/app", "2.0"},
	}
	for _, tc := range tests {
		t.Run(tc.ref, func(t *testing.T) {
			s := newStore(t)
			id, err := s.fetch(t, tc.ref)
			if err != nil {
				t.Fatal(err)
			}
			im, _ := s.opts.Store.Manifest(id)
			if v, _ := im.GetLabel("version"); im.Name.String() != tc.name || v != tc.version {
				t.Errorf("name %s:%s, want %s:%s", im.Name, v, tc.name, tc.version)
			}
			if b, err := os.ReadFile(filepath.Join(s.render(t, id), "a")); err != nil || string(b) != "2" {
				t.Errorf("a = %q, %v; want the upper layer's", b, err)
			}
			if again, err := s.fetch(t, tc.ref); err != nil || again != id {
				t.Errorf("second fetch: %s, %v", again, err)
			}
		})
	}
	s := newStore(t)
	if _, err := s.fetch(t, "oci-layout:"+oci+":nope"); err == nil || !strings.Contains(err.Error(), "v1") {
		t.Errorf("unknown tag: error = %v; want one listing the tags", err)
	}
}

// Bad layers are refused with the offending layer and entry named, and
// leave nothing behind.
func TestFetchRefusesBadLayers(t *testing.T) {
	tests := []struct {
		name  string
		layer []Entry
		want  []string
	}{
		{"dotdot", []Entry{File("../../etc/evil", "x")}, []string{"layer 2", `"../../etc/evil"`, "escapes"}},
		{"escaping symlink", []Entry{Symlink("evil", "../../../../etc")}, []string{"layer 2", `"evil"`, "symlink"}},
		{"device", []Entry{{Name: "dev/mem", Type: '3'}}, []string{"layer 2", "device"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg := newRegistry(t)
			ref := reg.push(testImage(t, v1.Config{}, testLayer(t, File("ok", "ok")), testLayer(t, tc.layer...)), "bad:latest")
			s := newStore(t)
			_, err := s.fetch(t, ref)
			var ie *aci.InvalidError
			if !errors.As(err, &ie) {
				t.Fatalf("error = %v; want an invalid image", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			s.assertEmpty(t)
		})
	}
}

// A registry that drops the connection in the middle of a layer fails the
// fetch without leaving anything, and the next fetch succeeds.
func TestFetchDroppedConnection(t *testing.T) {
	reg := newRegistry(t)
	big := strings.Repeat("incompressible? no, but long enough to cut. ", 50000)
	img := testImage(t, v1.Config{}, testLayer(t, File("small", "s")), testLayer(t, File("big", big)))
	ref := reg.push(img, "drop:latest")
	layers, _ := img.Layers()
	bigDigest, _ := layers[1].Digest()
	drops := 0
	reg.intercept = func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, bigDigest.String()) || drops > 0 {
			return false
		}
		drops++
		rc, err := layers[1].Compressed()
		if err != nil {
			t.Error(err)
			return false
		}
		defer rc.Close()
		size, _ := layers[1].Size()
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		w.WriteHeader(http.StatusOK)
		io.CopyN(w, rc, size/2)
		// Hijack and close: the client sees the body end early.
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				c.Close()
			}
		}
		return true
	}
	s := newStore(t)
	_, err := s.fetch(t, ref)
	if err == nil {
		t.Fatal("a dropped connection went unnoticed")
	}
	t.Log(err)
	s.assertEmpty(t)
	if _, err := s.fetch(t, ref); err != nil {
		t.Fatalf("retry: %v", err)
	}
}

// A blob whose content is not what its digest says is refused.
func TestFetchTamperedBlob(t *testing.T) {
	reg := newRegistry(t)
	img := testImage(t, v1.Config{}, testLayer(t, File("a", "genuine")))
	ref := reg.push(img, "tampered:latest")
	evil := testLayer(t, File("a", "evil"))
	layers, _ := img.Layers()
	d, _ := layers[0].Digest()
	reg.intercept = func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, d.String()) {
			return false
		}
		rc, _ := evil.Compressed()
		defer rc.Close()
		io.Copy(w, rc)
		return true
	}
	s := newStore(t)
	_, err := s.fetch(t, ref)
	if err == nil || !strings.Contains(err.Error(), "layer 1/1") {
		t.Fatalf("error = %v; want a tampered layer refused, naming it", err)
	}
	t.Log(err)
	s.assertEmpty(t)
}

// A registry served over HTTPS with a certificate nobody trusts is
// refused, unless TLS checks are off (--insecure-options=tls).
func TestFetchInsecureTLS(t *testing.T) {
	srv := httptest.NewTLSServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "https://")
	ref, _ := name.ParseReference(host + "/tls:1")
	img := testImage(t, v1.Config{}, testLayer(t, File("a", "a")))
	if err := ggremote.Write(ref, img, ggremote.WithTransport(srv.Client().Transport)); err != nil {
		t.Fatal(err)
	}
	s := newStore(t)
	// httptest listens on 127.0.0.1, for which plain HTTP would be
	// allowed: ask for the HTTPS port explicitly through the reference.
	if _, err := s.fetch(t, "docker://"+ref.String()); err == nil {
		t.Fatal("an untrusted certificate was accepted")
	}
	s.opts.InsecureTLS = true
	if _, err := s.fetch(t, "docker://"+ref.String()); err != nil {
		t.Fatalf("with InsecureTLS: %v", err)
	}
}
