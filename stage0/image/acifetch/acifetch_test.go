package acifetch

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"rkt.dev/rkt/stage0/image"
	. "rkt.dev/rkt/stage0/image/internal/acitest"
	"rkt.dev/rkt/stage0/image/remote"
	"rkt.dev/rkt/stage0/image/trust"
)

// server is an HTTPS server on 127.0.0.1 that every host name reaches,
// serving files by path with an ETag, and logging requests.
type server struct {
	mu     sync.Mutex
	files  map[string][]byte
	log    []string
	maxAge int
	client *http.Client
}

func newServer(t *testing.T) *server {
	t.Helper()
	s := &server{files: map[string][]byte{}}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		key := r.URL.Path
		if r.URL.RawQuery != "" {
			key += "?" + r.URL.RawQuery
		}
		s.log = append(s.log, key)
		b, ok := s.files[key]
		if !ok {
			http.NotFound(w, r)
			return
		}
		etag := `"` + strconv.Itoa(len(b)) + `"`
		w.Header().Set("ETag", etag)
		if s.maxAge > 0 {
			w.Header().Set("Cache-Control", "max-age="+strconv.Itoa(s.maxAge))
		}
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Write(b)
	}))
	t.Cleanup(srv.Close)
	tr := srv.Client().Transport.(*http.Transport).Clone()
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, srv.Listener.Addr().String())
	}
	s.client = &http.Client{Transport: tr}
	return s
}

func (s *server) put(path string, b []byte) {
	s.mu.Lock()
	s.files[path] = b
	s.mu.Unlock()
}

func (s *server) requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.log
	s.log = nil
	return out
}

func newKey(t *testing.T) (*openpgp.Entity, []byte) {
	t.Helper()
	e, err := openpgp.NewEntity("Publisher", "", "pub@example.com", &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, _ := armor.Encode(&buf, openpgp.PublicKeyType, nil)
	e.Serialize(w)
	w.Close()
	return e, buf.Bytes()
}

func sign(t *testing.T, e *openpgp.Entity, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := openpgp.ArmoredDetachSign(&buf, e, bytes.NewReader(data), nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gz(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

type fixture struct {
	srv  *server
	opts Options
	key  *openpgp.Entity
	pub  []byte
	now  time.Time
}

const discoveryPage = `<meta name="ac-discovery" content="example.com/app https://example.com/images/{name}-{version}.{ext}">
<meta name="ac-discovery-pubkeys" content="example.com/app https://example.com/pubkey.asc">`

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	st, err := image.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	x, err := remote.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{srv: newServer(t), now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	f.key, f.pub = newKey(t)
	f.opts = Options{
		Store: st, Index: x, Trust: trust.Store{LocalDir: filepath.Join(dir, "etc")},
		HTTP: f.srv.client, TmpDir: filepath.Join(dir, "cas", "tmp"), Policy: remote.PullUpdate,
		Now: func() time.Time { return f.now },
	}
	f.srv.put("/app?ac-discovery=1", []byte(discoveryPage))
	f.srv.put("/pubkey.asc", f.pub)
	return f
}

// publish serves an image (and its signature by signer) for version.
func (f *fixture) publish(t *testing.T, name, version string, signer *openpgp.Entity, compress bool) []byte {
	t.Helper()
	img := Build(t, append([]Entry{File("manifest", ManifestJSON(t, name, version, nil)), Dir("rootfs")}, File("rootfs/v", version))...)
	if compress {
		img = gz(t, img)
	}
	p := "/images/example.com/app-" + version + ".aci"
	f.srv.put(p, img)
	f.srv.put(p+".asc", sign(t, signer, img))
	return img
}

func (f *fixture) trustKey(t *testing.T) {
	t.Helper()
	if _, err := f.opts.Trust.Add(f.pub, "example.com/app"); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) assertNoImages(t *testing.T) {
	t.Helper()
	ims, _ := f.opts.Store.List()
	des, _ := os.ReadDir(f.opts.TmpDir)
	if len(ims) != 0 || len(des) != 0 {
		t.Errorf("a refused fetch left %d images and %d temporary files", len(ims), len(des))
	}
}

func TestFetchNameVerifiesAndCaches(t *testing.T) {
	f := newFixture(t)
	f.publish(t, "example.com/app", "1.0", f.key, true)
	f.srv.maxAge = 60

	_, err := FetchName(t.Context(), "example.com/app:1.0", f.opts)
	var ve *trust.VerifyError
	if !errors.As(err, &ve) || !errors.Is(err, trust.ErrUntrusted) || !strings.Contains(err.Error(), trust.Fingerprint(f.key)) || !strings.Contains(err.Error(), "rkt trust --prefix=example.com/app") {
		t.Fatalf("untrusted: error = %v", err)
	}
	f.assertNoImages(t)

	f.trustKey(t)
	id, err := FetchName(t.Context(), "example.com/app:1.0", f.opts)
	if err != nil {
		t.Fatal(err)
	}
	f.srv.requests()

	// Within max-age: no request for the image at all.
	if again, err := FetchName(t.Context(), "example.com/app:1.0", f.opts); err != nil || again != id {
		t.Fatalf("cached fetch: %s, %v", again, err)
	}
	for _, r := range f.srv.requests() {
		if strings.HasSuffix(r, ".aci") {
			t.Errorf("a fresh cached image was requested: %s", r)
		}
	}
	// After max-age: revalidated with its ETag, not downloaded.
	f.now = f.now.Add(time.Hour)
	if again, err := FetchName(t.Context(), "example.com/app:1.0", f.opts); err != nil || again != id {
		t.Fatalf("revalidated fetch: %s, %v", again, err)
	}
	// pull-policy new answers from the store by name.
	f.opts.Policy = remote.PullNew
	f.srv.requests()
	if again, err := FetchName(t.Context(), "example.com/app:1.0", f.opts); err != nil || again != id {
		t.Fatalf("policy new: %s, %v", again, err)
	}
	if r := f.srv.requests(); len(r) != 0 {
		t.Errorf("policy new asked the server: %v", r)
	}
}

func TestFetchRefusals(t *testing.T) {
	stranger, _ := newKey(t)
	tests := []struct {
		name   string
		setup  func(t *testing.T, f *fixture)
		ref    string
		reason error
		want   string
	}{
		{"untrusted signer", func(t *testing.T, f *fixture) {
			f.trustKey(t)
			f.publish(t, "example.com/app", "1.0", stranger, false)
		}, "example.com/app:1.0", trust.ErrUntrusted, trust.Fingerprint(stranger)},
		{"tampered image", func(t *testing.T, f *fixture) {
			f.trustKey(t)
			img := f.publish(t, "example.com/app", "1.0", f.key, false)
			bad := bytes.Clone(img)
			i := bytes.LastIndex(bad, []byte("1.0")) // the content of rootfs/v
			copy(bad[i:], "6.6")
			f.srv.put("/images/example.com/app-1.0.aci", bad)
		}, "example.com/app:1.0", trust.ErrBad, "tampered"},
		{"missing signature", func(t *testing.T, f *fixture) {
			f.trustKey(t)
			f.publish(t, "example.com/app", "1.0", f.key, false)
			delete(f.srv.files, "/images/example.com/app-1.0.aci.asc")
		}, "example.com/app:1.0", nil, "fetching its signature"},
		{"image with another name", func(t *testing.T, f *fixture) {
			f.trustKey(t)
			img := f.publish(t, "example.com/evil", "1.0", f.key, false)
			f.srv.put("/images/example.com/app-1.0.aci", img)
		}, "example.com/app:1.0", nil, "not example.com/app"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			tc.setup(t, f)
			_, err := FetchName(t.Context(), tc.ref, f.opts)
			if err == nil || (tc.reason != nil && !errors.Is(err, tc.reason)) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v; want %v containing %q", err, tc.reason, tc.want)
			}
			f.assertNoImages(t)
		})
	}
}

func TestTrustKeysFromHTTPS(t *testing.T) {
	f := newFixture(t)
	f.publish(t, "example.com/app", "1.0", f.key, false)
	f.opts.TrustKeysFromHTTPS = true
	if _, err := FetchName(t.Context(), "example.com/app:1.0", f.opts); err != nil {
		t.Fatal(err)
	}
	keys, _ := f.opts.Trust.KeysFor("example.com/app")
	if len(keys) != 1 || keys[0].Fingerprint != trust.Fingerprint(f.key) {
		t.Errorf("trusted keys = %v", keys)
	}
}

func TestFetchURLAndFile(t *testing.T) {
	f := newFixture(t)
	f.trustKey(t)
	img := f.publish(t, "example.com/app", "2.0", f.key, true)
	id, err := FetchURL(t.Context(), "https://example.com/images/example.com/app-2.0.aci", f.opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := FetchURL(t.Context(), "http://example.com/x.aci", f.opts); err == nil || !strings.Contains(err.Error(), "--insecure-options=http") {
		t.Errorf("plain HTTP: error = %v", err)
	}

	dir := t.TempDir()
	p := filepath.Join(dir, "app.aci")
	os.WriteFile(p, img, 0o644)
	if _, err := FetchFile(t.Context(), p, f.opts); err == nil || !strings.Contains(err.Error(), "app.aci.asc") {
		t.Errorf("file without signature: error = %v", err)
	}
	os.WriteFile(p+".asc", sign(t, f.key, img), 0o644)
	if got, err := FetchFile(t.Context(), p, f.opts); err != nil || got != id {
		t.Errorf("signed file: %s, %v; want %s", got, err, id)
	}
}

func TestVerifyStored(t *testing.T) {
	f := newFixture(t)
	f.trustKey(t)
	f.publish(t, "example.com/app", "1.0", f.key, false)
	f.publish(t, "example.com/app", "2.0", f.key, true)
	plain, err := FetchName(t.Context(), "example.com/app:1.0", f.opts)
	if err != nil {
		t.Fatal(err)
	}
	compressed, err := FetchName(t.Context(), "example.com/app:2.0", f.opts)
	if err != nil {
		t.Fatal(err)
	}
	for id, rechecked := range map[string]bool{plain: true, compressed: false} {
		r, err := VerifyStored(id, f.opts)
		if err != nil || r.Signer != trust.Fingerprint(f.key) || r.Rechecked != rechecked {
			t.Errorf("VerifyStored(%s) = %+v, %v; want signer %s, rechecked %v", id, r, err, trust.Fingerprint(f.key), rechecked)
		}
	}
	// Removing the key from the trust store makes both fail.
	keys, _ := f.opts.Trust.KeysFor("example.com/app")
	os.Remove(keys[0].Path)
	for _, id := range []string{plain, compressed} {
		if _, err := VerifyStored(id, f.opts); !errors.Is(err, trust.ErrUntrusted) {
			t.Errorf("VerifyStored(%s) after removing the key: %v", id, err)
		}
	}
	// An image imported without a signature has nothing to verify.
	f.opts.InsecureImage = true
	f.publish(t, "example.com/app", "3.0", f.key, false)
	unsigned, err := FetchName(t.Context(), "example.com/app:3.0", f.opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyStored(unsigned, f.opts); err == nil || !strings.Contains(err.Error(), "no signature") {
		t.Errorf("unsigned image: %v", err)
	}
}

func TestMaxAge(t *testing.T) {
	for v, want := range map[string]int{"": 0, "max-age=60": 60, "public, max-age=5": 5, "max-age=60, no-cache": 0, "no-store": 0, "max-age=x": 0} {
		h := http.Header{"Cache-Control": {v}}
		if got := maxAge(h); got != want {
			t.Errorf("maxAge(%q) = %d, want %d", v, got, want)
		}
	}
}
