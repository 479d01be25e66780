package docker

import (
	"bytes"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	ggremote "github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"rkt.dev/rkt/stage0/image"
	"rkt.dev/rkt/stage0/image/docker/dockertest"
	. "rkt.dev/rkt/stage0/image/internal/acitest"
	"rkt.dev/rkt/stage0/image/remote"
)

// testLayer is a gzip-compressed layer holding entries.
func testLayer(t *testing.T, entries ...Entry) v1.Layer {
	t.Helper()
	b := Build(t, entries...)
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// testImage is a linux/amd64 image of layers with configuration cfg.
func testImage(t *testing.T, cfg v1.Config, layers ...v1.Layer) v1.Image {
	t.Helper()
	return testImageFor(t, "amd64", cfg, layers...)
}

func testImageFor(t *testing.T, arch string, cfg v1.Config, layers ...v1.Layer) v1.Image {
	return dockertest.Image(t, arch, cfg, layers...)
}

// testRegistry is go-containerregistry's registry on 127.0.0.1, with a
// hook that may take over any request and a log of the requests.
type testRegistry struct {
	t    *testing.T
	host string
	mu   sync.Mutex
	reqs []string
	// intercept, if set, may answer a request itself (returning true).
	intercept func(w http.ResponseWriter, r *http.Request) bool
}

func newRegistry(t *testing.T) *testRegistry {
	t.Helper()
	reg := &testRegistry{t: t}
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reg.mu.Lock()
		reg.reqs = append(reg.reqs, r.Method+" "+r.URL.Path)
		icpt := reg.intercept
		reg.mu.Unlock()
		if icpt != nil && icpt(w, r) {
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	reg.host = strings.TrimPrefix(srv.URL, "http://")
	return reg
}

// push writes img as repo:tag and returns the docker:// reference.
func (r *testRegistry) push(img v1.Image, repoTag string) string {
	r.t.Helper()
	ref, err := name.ParseReference(r.host + "/" + repoTag)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := ggremote.Write(ref, img); err != nil {
		r.t.Fatal(err)
	}
	r.reset()
	return "docker://" + ref.String()
}

func (r *testRegistry) reset() {
	r.mu.Lock()
	r.reqs = nil
	r.mu.Unlock()
}

// requests returns the logged requests whose path contains part.
func (r *testRegistry) requests(part string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, q := range r.reqs {
		if strings.Contains(q, part) {
			out = append(out, q)
		}
	}
	return out
}

// testStore is an image store with the options Fetch needs.
type testStore struct {
	dataDir string
	opts    Options
}

func newStore(t *testing.T) *testStore {
	t.Helper()
	dir := t.TempDir()
	s, err := image.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	x, err := remote.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return &testStore{dataDir: dir, opts: Options{
		Store: s, Index: x, TmpDir: filepath.Join(dir, "cas", "tmp"), Policy: remote.PullUpdate,
	}}
}

func (s *testStore) fetch(t *testing.T, ref string) (string, error) {
	t.Helper()
	src, err := ParseSource(ref, false)
	if err != nil {
		t.Fatal(err)
	}
	return Fetch(t.Context(), src, s.opts)
}

// assertEmpty checks that a failed fetch left nothing: no image, no
// temporary file.
func (s *testStore) assertEmpty(t *testing.T) {
	t.Helper()
	ims, err := s.opts.Store.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(ims) != 0 {
		t.Errorf("the store holds %d images after a failed fetch", len(ims))
	}
	des, err := os.ReadDir(s.opts.TmpDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(des) != 0 {
		t.Errorf("cas/tmp holds %d entries after a failed fetch", len(des))
	}
}

// render renders the image id and returns its rootfs.
func (s *testStore) render(t *testing.T, id string) string {
	t.Helper()
	tree, err := s.opts.Store.Render(id)
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.opts.Store.TreePath(tree)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
