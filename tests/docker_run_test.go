package tests

import (
	"archive/tar"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"rkt.dev/rkt/tests/testutil"
)

// dockerRun runs a docker:// image to its end with the fly stage1.
func dockerRun(c *testutil.Ctx, args ...string) testutil.Result {
	return c.Run(append([]string{"run", "--insecure-options=image", "--stage1-path=" + c.Stage1("fly")}, args...)...)
}

// TestDockerRunBusybox is the Done-when of Docker images: busybox-static
// pushed to a registry on 127.0.0.1:5000, run with rkt under fly.
func TestDockerRunBusybox(t *testing.T) {
	c := flyCtx(t)
	reg := startRegistry(t, true)
	ref := reg.push(busyboxImage(t), "library/busybox:latest")
	r := c.Run("run", "--insecure-options=image", "--stage1-name=fly", ref, "--exec", "/bin/sh", "--", "-c", "echo ok")
	if r.ExitCode != 0 || strings.TrimSpace(r.Stdout) != "ok" {
		t.Fatalf("rkt run %s: want ok, got %v", ref, r)
	}
	// The image is in the store under its Docker name and tag.
	r = c.RunOK("image", "list", "--no-legend")
	want := strings.ReplaceAll(reg.Host, ":", "-") + "/library/busybox:latest"
	if !strings.Contains(r.Stdout, want) {
		t.Errorf("image list does not show %s:\n%s", want, r.Stdout)
	}
	// Without --insecure-options=image, rkt refuses and says why.
	r = c.Run("run", "--stage1-name=fly", ref)
	if r.ExitCode != 254 || !strings.Contains(r.Stderr, "--insecure-options=image") {
		t.Errorf("run without --insecure-options=image: want 254 and the flag named, got %v", r)
	}
}

// TestDockerRunBusyboxKVM is the same under the kvm stage1.
func TestDockerRunBusyboxKVM(t *testing.T) {
	k := newKVM(t) // skips unless build/stage1-kvm.aci and QEMU exist
	reg := startRegistry(t, true)
	ref := reg.push(busyboxImage(t), "library/busybox:latest")
	r := k.Run("run", "--insecure-options=image", "--stage1-path="+k.stage1, "--net=none", ref, "--exec", "/bin/sh", "--", "-c", "echo ok")
	if r.ExitCode != 0 || !strings.Contains(r.Stdout, "ok") {
		t.Fatalf("rkt run %s under kvm: want ok, got %v", ref, r)
	}
}

// TestDockerRunBusyboxNspawn is the same under the nspawn stage1.
func TestDockerRunBusyboxNspawn(t *testing.T) {
	c, stage1 := nspawnCtx(t) // skips unless build/stage1-nspawn.aci exists
	if _, err := exec.LookPath("systemd-nspawn"); err != nil {
		t.Skip("systemd-nspawn is not installed (apt-get install systemd-container)")
	}
	reg := startRegistry(t, true)
	ref := reg.push(busyboxImage(t), "library/busybox:latest")
	r := c.Run("run", "--insecure-options=image", "--stage1-path="+stage1, "--net=none", ref, "--exec", "/bin/sh", "--", "-c", "echo ok")
	if r.ExitCode != 0 || !strings.Contains(r.Stdout, "ok") {
		t.Fatalf("rkt run %s under nspawn: want ok, got %v", ref, r)
	}
}

// TestDockerImageSemantics runs an image whose layers delete and replace
// files through whiteouts and whose configuration sets the user by name,
// the environment, the working directory and the command.
func TestDockerImageSemantics(t *testing.T) {
	c := flyCtx(t)
	reg := startRegistry(t, false)
	base := dockerLayer(t,
		layerDir("etc"), layerFile("etc/motd", "lower"), layerFile("etc/keep", "kept"),
		layerDir("data"), layerFile("data/old1", "x"), layerFile("data/old2", "x"),
		layerDir("home"), layerEntry{name: "home/user", typ: '5', mode: 0o755, uid: 1000, gid: 1000},
	)
	upper := dockerLayer(t,
		layerDir("etc"), layerFile("etc/.wh.motd", ""), layerFile("etc/keep", "replaced"),
		layerDir("data"), layerFile("data/.wh..wh..opq", ""), layerFile("data/new", "n"),
	)
	img := dockerImage(t, v1.Config{
		Entrypoint: []string{"/bin/sh", "-c"},
		Cmd:        []string{`echo "uid=$(id -u) gid=$(id -g) pwd=$(pwd) greeting=$GREETING"; ls /data; cat /etc/keep; test -e /etc/motd && echo motd-present || echo motd-gone`},
		Env:        []string{"PATH=/bin", "GREETING=hello world"},
		User:       "user",
		WorkingDir: "/home/user",
		Volumes:    map[string]struct{}{"/data": {}},
	}, busyboxLayer(t), base, upper)
	ref := reg.push(img, "semantics:1")
	f := c.UUIDFile()
	r := c.Run("run", "--insecure-options=image", "--stage1-path="+c.Stage1("fly"), "--uuid-file-save="+f, ref)
	if r.ExitCode != 0 {
		t.Fatalf("rkt run: %v", r)
	}
	for _, want := range []string{"uid=1000 gid=1000 pwd=/home/user greeting=hello world", "replaced", "motd-gone"} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.Stdout)
		}
	}
	// /data is a Docker volume: an empty volume is mounted there, as rkt
	// does for every mount point without a --volume, filled with the
	// image's /data (the upper layer's file only).
	if !strings.Contains(r.Stdout, "\nnew\n") || strings.Contains(r.Stdout, "old1") {
		t.Errorf("want /data to hold the image's new and not the opaque directory's lower files:\n%s", r.Stdout)
	}
	// The image's own /data holds the upper layer only.
	dest := filepath.Join(t.TempDir(), "rootfs")
	c.RunOK("image", "render", "--rootfs-only", dockerImageName(reg.Host, "semantics")+":1", dest)
	ents, _ := os.ReadDir(filepath.Join(dest, "data"))
	if len(ents) != 1 || ents[0].Name() != "new" {
		t.Errorf("rendered /data = %v, want only new", ents)
	}
}

// TestDockerVolumeFromImage: an image's VOLUME is a writable volume of its
// own, mounted where the image declares it, that starts with the image's
// content there, under every flavor.
func TestDockerVolumeFromImage(t *testing.T) {
	testutil.RequireRoot(t)
	reg := startRegistry(t, false)
	img := dockerImage(t, v1.Config{Volumes: map[string]struct{}{"/data": {}}}, busyboxLayer(t),
		dockerLayer(t, layerDir("data"), layerFile("data/seed", "from-image"), layerDir("data/sub"), layerFile("data/sub/deep", "nested")))
	ref := reg.push(img, "volume:1")
	script := "cat /data/seed /data/sub/deep; echo; echo written > /data/new; grep -c ' /data ' /proc/self/mountinfo"
	const want = "from-imagenested\n1\n"
	flavors := []struct {
		name string
		run  func(t *testing.T) testutil.Result
	}{
		{"fly", func(t *testing.T) testutil.Result {
			return dockerRun(flyCtx(t), ref, "--exec", "/bin/sh", "--", "-c", script)
		}},
		{"nspawn", func(t *testing.T) testutil.Result {
			c, stage1 := nspawnCtx(t)
			if _, err := exec.LookPath("systemd-nspawn"); err != nil {
				t.Skip("systemd-nspawn is not installed (apt-get install systemd-container)")
			}
			return c.Run("run", "--insecure-options=image", "--stage1-path="+stage1, "--net=none", ref, "--exec", "/bin/sh", "--", "-c", script)
		}},
		{"nspawn with a user namespace", func(t *testing.T) testutil.Result {
			c, stage1 := nspawnCtx(t)
			if _, err := exec.LookPath("systemd-nspawn"); err != nil {
				t.Skip("systemd-nspawn is not installed (apt-get install systemd-container)")
			}
			return c.Run("run", "--insecure-options=image", "--stage1-path="+stage1, "--net=none", "--private-users", ref, "--exec", "/bin/sh", "--", "-c", script)
		}},
		{"kvm", func(t *testing.T) testutil.Result {
			k := newKVM(t)
			return k.Run("run", "--insecure-options=image", "--stage1-path="+k.stage1, "--net=none", ref, "--exec", "/bin/sh", "--", "-c", script)
		}},
	}
	for _, f := range flavors {
		t.Run(f.name, func(t *testing.T) {
			if r := f.run(t); r.ExitCode != 0 || r.Stdout != want {
				t.Errorf("want stdout %q, got %v", want, r)
			}
		})
	}
}

// dockerImageName is the store name of a registry image.
func dockerImageName(host, repo string) string {
	return strings.ReplaceAll(host, ":", "-") + "/" + repo
}

// TestDockerManifestList runs the linux/amd64 image of a multi-arch index.
func TestDockerManifestList(t *testing.T) {
	c := flyCtx(t)
	reg := startRegistry(t, false)
	amd := busyboxImage(t, dockerLayer(t, layerFile("arch", "amd64")))
	arm := dockerImageFor(t, "arm64", v1.Config{}, dockerLayer(t, layerFile("arch", "arm64")))
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
	)
	ref := reg.pushIndex(idx, "multi:latest")
	r := dockerRun(c, ref, "--exec", "/bin/cat", "--", "/arch")
	if r.ExitCode != 0 || strings.TrimSpace(r.Stdout) != "amd64" {
		t.Fatalf("want the amd64 image, got %v", r)
	}
}

// TestDockerManyFiles fetches an image with 20000 small files and checks
// that the stored image holds them all. It reads the stored ACI rather
// than rendering it: creating 20000 files costs seconds on a busy disk and
// tests nothing of the conversion.
func TestDockerManyFiles(t *testing.T) {
	c := testutil.New(t)
	reg := startRegistry(t, false)
	const n = 20000
	entries := []layerEntry{layerDir("many")}
	for i := range n {
		d := "many/" + strconv.Itoa(i/1000)
		if i%1000 == 0 {
			entries = append(entries, layerDir(d))
		}
		entries = append(entries, layerFile(d+"/f"+strconv.Itoa(i), strconv.Itoa(i)))
	}
	// A second layer deletes one directory, to exercise whiteouts at scale.
	ref := reg.push(dockerImage(t, v1.Config{}, dockerLayer(t, entries...), dockerLayer(t, layerFile("many/.wh.7", ""))), "many:latest")
	id := strings.TrimSpace(c.RunOK("fetch", "--insecure-options=image", ref).Stdout)
	out := filepath.Join(t.TempDir(), "many.aci")
	c.RunOK("image", "export", id, out)
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	files := 0
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag == tar.TypeReg && strings.HasPrefix(hdr.Name, "rootfs/many/") {
			files++
			if strings.HasPrefix(hdr.Name, "rootfs/many/7/") {
				t.Fatalf("%s survived its whiteout", hdr.Name)
			}
		}
	}
	if want := n - 1000; files != want {
		t.Errorf("the stored image has %d files, want %d", files, want)
	}
}
