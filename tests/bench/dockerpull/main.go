// Command dockerpull measures how fast rkt pulls a Docker image compared
// with skopeo, the reference tool for copying images. In one run it
//
//  1. starts Debian's docker-registry on 127.0.0.1 (a free port),
//  2. pushes one multi-layer image of at least 50 MB to it (busybox-static
//     plus layers of pseudo-random and of compressible data, made here
//     from a fixed seed so every run pulls the same bytes), and
//  3. alternates, after one uncounted warm-up of each,
//     a) skopeo copy docker://… dir:DIR   (download and verify the blobs)
//     b) rkt fetch docker://…             (download, verify, convert to an
//     ACI and import it: what rkt run does before starting a pod)
//     each into a fresh directory,
//
// and prints the medians and their ratio on one line:
//
//	BENCH docker-pull <median rkt> <median skopeo> ratio=<rkt/skopeo>
//
// Both are measured on the same machine in the same run, so the ratio holds
// whatever the machine's speed. The registry is stopped by its PID and every
// directory is removed before the command exits.
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"rkt.dev/rkt/tests/bench/benchutil"
	"rkt.dev/rkt/tests/registry"
)

func main() {
	var o options
	flag.IntVar(&o.runs, "runs", 5, "measured runs of each (at least 5)")
	flag.StringVar(&o.rkt, "rkt", "build/bin/rkt", "rkt binary")
	flag.StringVar(&o.skopeo, "skopeo", "skopeo", "skopeo binary")
	flag.StringVar(&o.registry, "registry", "docker-registry", "docker-registry binary")
	flag.StringVar(&o.busybox, "busybox", "/bin/busybox", "busybox-static binary for the base layer")
	flag.IntVar(&o.sizeMiB, "size", 64, "uncompressed size of the image's data layers in MiB (at least 50)")
	flag.BoolVar(&o.verbose, "v", false, "show the output of every command")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "dockerpull:", err)
		os.Exit(1)
	}
}

type options struct {
	runs                           int
	rkt, skopeo, registry, busybox string
	sizeMiB                        int
	verbose                        bool
}

func run(o options) error {
	if o.sizeMiB < 50 {
		return fmt.Errorf("-size must be at least 50 (MiB), not %d", o.sizeMiB)
	}
	for _, bin := range []string{o.rkt, o.skopeo, o.registry} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("%s not found (build rkt with make; apt-get install skopeo docker-registry): %w", bin, err)
		}
	}
	work, err := os.MkdirTemp("", "rkt-bench-dockerpull-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	host, stop, err := registry.Start(o.registry, work, "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer stop()

	img, err := benchImage(o)
	if err != nil {
		return err
	}
	ref := host + "/bench/pull:latest"
	r, err := name.ParseReference(ref)
	if err != nil {
		return err
	}
	start := time.Now()
	if err := remote.Write(r, img); err != nil {
		return fmt.Errorf("pushing the image: %w", err)
	}
	size, layers := imageSize(img)
	fmt.Fprintf(os.Stderr, "pushed %s: %d layers, %.1f MiB compressed, in %s\n", ref, layers, float64(size)/(1<<20), time.Since(start).Round(time.Millisecond))

	n := 0
	skopeo := func() (time.Duration, error) {
		n++
		dir := filepath.Join(work, fmt.Sprintf("skopeo-%d", n))
		defer os.RemoveAll(dir)
		return timed(exec.Command(o.skopeo, "copy", "--quiet", "--src-tls-verify=false", "docker://"+ref, "dir:"+dir), o.verbose)
	}
	rkt := func() (time.Duration, error) {
		n++
		dir := filepath.Join(work, fmt.Sprintf("rkt-%d", n))
		defer os.RemoveAll(dir)
		return timed(exec.Command(o.rkt, "--dir="+dir, "--insecure-options=image", "fetch", "docker://"+ref), o.verbose)
	}
	// The warm-up runs (not counted) bring the registry's files into the
	// page cache.
	return benchutil.Compare(o.runs, os.Stderr, benchutil.Pair{Name: "docker-pull", A: skopeo, B: rkt})
}

// timed runs cmd and returns how long it took; verbose shows its output.
func timed(cmd *exec.Cmd, verbose bool) (time.Duration, error) {
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out.String())
	}
	if verbose {
		os.Stderr.Write(out.Bytes())
	}
	return d, nil
}

// benchImage is busybox plus data layers of sizeMiB in total: three
// quarters pseudo-random (compressed layers as large as the data, like
// binaries and archives), one quarter text-like (compressible, like
// sources and configuration), each layer holding files of 64 KiB to 4 MiB.
func benchImage(o options) (v1.Image, error) {
	bb, err := os.ReadFile(o.busybox)
	if err != nil {
		return nil, fmt.Errorf("reading busybox: %w", err)
	}
	rng := rand.New(rand.NewChaCha8([32]byte{'r', 'k', 't'}))
	base := []entry{{"bin/busybox", bb, 0o755}, {"etc/passwd", []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644}}
	layers := []v1.Layer{}
	l, err := makeLayer(base)
	if err != nil {
		return nil, err
	}
	layers = append(layers, l)
	total := o.sizeMiB << 20
	perLayer := total / 4
	for i := range 4 {
		var files []entry
		for n, j := 0, 0; n < perLayer; j++ {
			size := min(64<<10<<(j%7), perLayer-n)
			b := make([]byte, size)
			if i < 3 {
				for k := 0; k+8 <= len(b); k += 8 {
					v := rng.Uint64()
					for s := range 8 {
						b[k+s] = byte(v >> (8 * s))
					}
				}
			} else {
				words := []string{"rkt ", "pod ", "image ", "layer ", "stage1 ", "registry ", "\n"}
				var buf bytes.Buffer
				for buf.Len() < size {
					buf.WriteString(words[rng.IntN(len(words))])
				}
				b = buf.Bytes()[:size]
			}
			files = append(files, entry{fmt.Sprintf("data/layer%d/file%03d", i, j), b, 0o644})
			n += size
		}
		l, err := makeLayer(files)
		if err != nil {
			return nil, err
		}
		layers = append(layers, l)
	}
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.Cmd = []string{"/bin/busybox", "sh"}
	return mutate.ConfigFile(img, cf)
}

type entry struct {
	name string
	body []byte
	mode int64
}

// makeLayer builds a gzip layer (fast compression: the push is not what
// is measured) with the parent directories of its files.
func makeLayer(files []entry) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	var names []string
	for _, f := range files {
		for d := filepath.Dir(f.name); d != "."; d = filepath.Dir(d) {
			if !dirs[d] {
				dirs[d] = true
				names = append(names, d)
			}
		}
	}
	sort.Strings(names)
	mtime := time.Unix(1e9, 0)
	for _, d := range names {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: mtime}); err != nil {
			return nil, err
		}
	}
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: f.mode, Size: int64(len(f.body)), ModTime: mtime}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
		tarball.WithCompressionLevel(gzip.BestSpeed))
}

// imageSize returns the compressed size of the image's layers and their number.
func imageSize(img v1.Image) (int64, int) {
	ls, err := img.Layers()
	if err != nil {
		return 0, 0
	}
	var total int64
	for _, l := range ls {
		if n, err := l.Size(); err == nil {
			total += n
		}
	}
	return total, len(ls)
}
