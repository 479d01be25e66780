package acifetch

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
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
	"github.com/ulikunitz/xz"

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
	// Made two hours ago, so that a test can give it a lifetime that
	// has ended (see expired).
	cfg := &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA, Time: func() time.Time { return time.Now().Add(-2 * time.Hour) }}
	e, err := openpgp.NewEntity("Publisher", "", "pub@example.com", cfg)
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
	dir  string
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
	f := &fixture{dir: dir, srv: newServer(t), now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
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

// TestVerifyStored fetches signed images, uncompressed and compressed,
// changes the trust store or the store after the fetch, and checks what
// VerifyStored says: the signature is checked again against the bytes it
// signed, under the trust store as it is now.
func TestVerifyStored(t *testing.T) {
	hello, err := os.ReadFile("../testdata/hello.aci.bz2")
	if err != nil {
		t.Fatal(err)
	}
	removeKey := func(t *testing.T, f *fixture, _ string) {
		keys, _ := f.opts.Trust.KeysFor("example.com/app")
		if len(keys) != 1 {
			t.Fatalf("trusted keys: %v", keys)
		}
		if err := os.Remove(keys[0].Path); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		// image is the file published, signed by the fixture's key.
		image func(t *testing.T, img []byte) []byte
		// after changes the trust store or the store after the fetch.
		after func(t *testing.T, f *fixture, id string)
		// reason is what the error matches, want what it says ("{id}"
		// and "{fp}" stand for the image ID and the key's fingerprint);
		// neither means that the image verifies.
		reason error
		want   []string
	}{
		{name: "uncompressed", image: plain},
		{name: "gzip", image: gz},
		{name: "xz", image: xzc},
		{name: "bzip2", image: func(*testing.T, []byte) []byte { return hello }},
		{name: "uncompressed, key removed", image: plain, after: removeKey, reason: trust.ErrUntrusted,
			want: []string{"{id}", "{fp}", "no longer trusted", "rkt trust --prefix=example.com/app"}},
		{name: "gzip, key removed", image: gz, after: removeKey, reason: trust.ErrUntrusted,
			want: []string{"{id}", "{fp}", "no longer trusted", "rkt trust --prefix=example.com/app"}},
		{name: "gzip, key masked", image: gz, after: func(t *testing.T, f *fixture, _ string) {
			// The key moves to the system directory, and an empty
			// local file masks it.
			keys, _ := f.opts.Trust.KeysFor("example.com/app")
			rel, _ := filepath.Rel(f.opts.Trust.LocalDir, keys[0].Path)
			f.opts.Trust.SystemDir = t.TempDir()
			sys := filepath.Join(f.opts.Trust.SystemDir, rel)
			os.MkdirAll(filepath.Dir(sys), 0o755)
			os.WriteFile(sys, f.pub, 0o644)
			os.WriteFile(keys[0].Path, nil, 0o644)
		}, reason: trust.ErrUntrusted, want: []string{"{id}", "{fp}"}},
		{name: "gzip, key expired", image: gz, after: func(t *testing.T, f *fixture, _ string) {
			keys, _ := f.opts.Trust.KeysFor("example.com/app")
			if err := os.WriteFile(keys[0].Path, expired(t, f.key), 0o644); err != nil {
				t.Fatal(err)
			}
		}, reason: trust.ErrExpired, want: []string{"{id}", "{fp}", "no longer valid", "rkt trust --prefix=example.com/app"}},
		{name: "gzip, kept file tampered", image: gz, after: func(t *testing.T, f *fixture, id string) {
			p := keptFile(t, f)
			b, _ := os.ReadFile(p)
			b[len(b)/2] ^= 1
			os.WriteFile(p, b, 0o644)
		}, reason: trust.ErrBad, want: []string{"{id}", "{fp}", "tampered", "rkt image rm {id}"}},
		{name: "gzip, kept file removed", image: gz, after: func(t *testing.T, f *fixture, id string) {
			os.Remove(keptFile(t, f))
		}, want: []string{"{id}", "missing", "rkt image rm {id}"}},
		{name: "gzip, record names another image's signed file", image: gz, after: func(t *testing.T, f *fixture, id string) {
			// Another image signed by the same key, whose signature
			// and kept file the record of the first is made to name:
			// everything verifies, except that it is not this image.
			other := gz(t, Build(t, File("manifest", ManifestJSON(t, "example.com/app", "9.0", nil)), Dir("rootfs")))
			f.srv.put("/other.aci", other)
			f.srv.put("/other.aci.asc", sign(t, f.key, other))
			oid, err := FetchURL(t.Context(), "https://example.com/other.aci", f.opts)
			if err != nil {
				t.Fatal(err)
			}
			o, _ := f.opts.Store.Get(oid)
			rp := filepath.Join(f.dir, "cas", "index", id+".json")
			var rec map[string]any
			b, _ := os.ReadFile(rp)
			json.Unmarshal(b, &rec)
			rec["signature"], rec["signed"] = o.Signature, o.Signed
			b, _ = json.Marshal(rec)
			os.WriteFile(rp, b, 0o644)
		}, want: []string{"{id}", "another image"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			if _, err := f.opts.Trust.Add(f.pub, "example.com"); err != nil {
				t.Fatal(err)
			}
			img := tc.image(t, Build(t, File("manifest", ManifestJSON(t, "example.com/app", "1.0", nil)), Dir("rootfs"), File("rootfs/v", "1.0")))
			f.srv.put("/app.aci", img)
			f.srv.put("/app.aci.asc", sign(t, f.key, img))
			id, err := FetchURL(t.Context(), "https://example.com/app.aci", f.opts)
			if err != nil {
				t.Fatal(err)
			}
			if tc.after != nil {
				tc.after(t, f, id)
			}
			r, err := VerifyStored(id, f.opts)
			fp := trust.Fingerprint(f.key)
			if tc.want == nil {
				if err != nil || r.Signer != fp || r.Identity == "" {
					t.Fatalf("VerifyStored = %+v, %v; want signer %s", r, err, fp)
				}
				return
			}
			if err == nil || (tc.reason != nil && !errors.Is(err, tc.reason)) {
				t.Fatalf("VerifyStored error = %v, want %v", err, tc.reason)
			}
			for _, w := range tc.want {
				w = strings.NewReplacer("{id}", id, "{fp}", fp).Replace(w)
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// TestVerifyUnsigned: images fetched without verification keep nothing,
// and verify says there is no signature to verify.
func TestVerifyUnsigned(t *testing.T) {
	f := newFixture(t)
	f.opts.InsecureImage = true
	f.publish(t, "example.com/app", "3.0", f.key, true)
	id, err := FetchName(t.Context(), "example.com/app:3.0", f.opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyStored(id, f.opts); !errors.Is(err, image.ErrNoSignature) || !strings.Contains(err.Error(), "no signature to verify") || !strings.Contains(err.Error(), "--insecure-options=image") {
		t.Errorf("unsigned image: %v", err)
	}
	if des, err := os.ReadDir(filepath.Join(f.dir, "cas", "signed")); err == nil && len(des) > 0 {
		t.Errorf("an unsigned fetch kept a signed file: %v", des)
	}
	if im, _ := f.opts.Store.Get(id); im.Signature != "" || im.Signed != "" {
		t.Errorf("an unsigned fetch recorded a signature: %+v", im)
	}
}

func plain(_ *testing.T, b []byte) []byte { return b }

func xzc(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := xz.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(b)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// keptFile is the one signed file kept in the fixture's store.
func keptFile(t *testing.T, f *fixture) string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(f.dir, "cas", "signed", "sha512", "*", "sha512-*"))
	if len(m) != 1 {
		t.Fatalf("kept signed files: %v", m)
	}
	return m[0]
}

// expired returns the armored public key of e as its owner would publish
// it after giving it a lifetime that ended an hour ago: a newer self
// signature with a key lifetime of one hour from its creation.
func expired(t *testing.T, e *openpgp.Entity) []byte {
	t.Helper()
	id := e.PrimaryIdentity()
	sig := *id.SelfSignature
	lifetime := uint32(time.Hour / time.Second)
	sig.KeyLifetimeSecs = &lifetime
	cfg := &packet.Config{Time: func() time.Time { return e.PrimaryKey.CreationTime.Add(time.Minute) }}
	sig.CreationTime = cfg.Now()
	if err := sig.SignUserId(id.UserId.Id, e.PrimaryKey, e.PrivateKey, cfg); err != nil {
		t.Fatal(err)
	}
	id.Signatures = append(id.Signatures, &sig)
	id.SelfSignature = &sig
	var buf bytes.Buffer
	w, _ := armor.Encode(&buf, openpgp.PublicKeyType, nil)
	if err := e.Serialize(w); err != nil {
		t.Fatal(err)
	}
	w.Close()
	return buf.Bytes()
}

func TestMaxAge(t *testing.T) {
	for v, want := range map[string]int{"": 0, "max-age=60": 60, "public, max-age=5": 5, "max-age=60, no-cache": 0, "no-store": 0, "max-age=x": 0} {
		h := http.Header{"Cache-Control": {v}}
		if got := maxAge(h); got != want {
			t.Errorf("maxAge(%q) = %d, want %d", v, got, want)
		}
	}
}
