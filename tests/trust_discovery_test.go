package tests

// Signed ACIs served over HTTPS with appc meta discovery. Discovery always
// starts at https://{name}, port 443, so the test gives itself a network
// namespace with only a loopback interface, serves there on
// 127.0.0.1:443 with a certificate from a CA it creates, and runs rkt in
// that namespace with SSL_CERT_FILE naming the CA: real discovery, real
// TLS, no traffic beyond loopback and no port shared with anything else.

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"

	"rkt.dev/rkt/internal/netns"
	"rkt.dev/rkt/tests/testutil"
)

// appName is the image the tests discover: https://localhost/rkt-test/app.
const appName = "localhost/rkt-test/app"

// imageServer is an HTTPS server on 127.0.0.1:443 in a private network
// namespace, serving files with ETags and an adjustable max-age.
type imageServer struct {
	t      *testing.T
	nsPath string
	caFile string
	mu     sync.Mutex
	files  map[string][]byte
	maxAge int
	log    []string
}

// newImageServer creates the namespace, the CA and the server; the
// test's cleanup stops the server and deletes the namespace.
func newImageServer(t *testing.T) *imageServer {
	t.Helper()
	testutil.RequireRoot(t)
	if _, err := exec.LookPath("nsenter"); err != nil {
		t.Skip("nsenter is not installed (util-linux)")
	}
	ns := fmt.Sprintf("rkt-trust-%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Skipf("cannot create a network namespace: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	if out, err := exec.Command("ip", "-n", ns, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("bringing lo up: %v: %s", err, out)
	}
	s := &imageServer{t: t, nsPath: "/run/netns/" + ns, files: map[string][]byte{}}
	cert := s.makeCA()
	var l net.Listener
	err := netns.Do(s.nsPath, func() (err error) {
		l, err = net.Listen("tcp", "127.0.0.1:443")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(s.serve), ErrorLog: nil}
	go srv.Serve(tls.NewListener(l, &tls.Config{Certificates: []tls.Certificate{cert}}))
	t.Cleanup(func() { srv.Close() })
	return s
}

// makeCA writes a CA certificate for rkt to trust and returns a server
// certificate it signed for localhost.
func (s *imageServer) makeCA() tls.Certificate {
	t := s.t
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "rkt test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	s.caFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(s.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644); err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func (s *imageServer) serve(w http.ResponseWriter, r *http.Request) {
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
	etag := fmt.Sprintf(`"%x-%d"`, len(b), bytes.Count(b, []byte{0}))
	w.Header().Set("ETag", etag)
	w.Header().Set("Cache-Control", fmt.Sprintf("max-age=%d", s.maxAge))
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Write(b)
}

func (s *imageServer) put(path string, b []byte) {
	s.mu.Lock()
	s.files[path] = b
	s.mu.Unlock()
}

// requests returns and forgets the logged requests.
func (s *imageServer) requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.log
	s.log = nil
	return out
}

func (s *imageServer) setMaxAge(n int) {
	s.mu.Lock()
	s.maxAge = n
	s.mu.Unlock()
}

// rkt runs rkt in the server's namespace, trusting its CA.
func (s *imageServer) rkt(c *testutil.Ctx, stdin string, args ...string) testutil.Result {
	cmd := c.Cmd(args...)
	cmd.Args = append([]string{"nsenter", "--net=" + s.nsPath, "--", cmd.Path}, cmd.Args[1:]...)
	cmd.Path, _ = exec.LookPath("nsenter")
	cmd.Env = append(os.Environ(), "SSL_CERT_FILE="+s.caFile)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	return c.RunCmd(cmd)
}

// signingKey is an OpenPGP key made for the test, with its armored public
// key in a file.
type signingKey struct {
	entity  *openpgp.Entity
	pub     []byte
	pubFile string
	fp      string
}

func newSigningKey(t *testing.T, name string) signingKey {
	t.Helper()
	e, err := openpgp.NewEntity(name, "", strings.ToLower(strings.ReplaceAll(name, " ", "."))+"@example.com",
		&packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, _ := armor.Encode(&buf, openpgp.PublicKeyType, nil)
	e.Serialize(w)
	w.Close()
	f := filepath.Join(t.TempDir(), "pubkey.asc")
	if err := os.WriteFile(f, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return signingKey{entity: e, pub: buf.Bytes(), pubFile: f, fp: fmt.Sprintf("%x", e.PrimaryKey.Fingerprint)}
}

func (k signingKey) sign(t *testing.T, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := openpgp.ArmoredDetachSign(&buf, k.entity, bytes.NewReader(data), nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// appImage is the busybox example image renamed to appName:version.
func appImage(t *testing.T, c *testutil.Ctx, version string) []byte {
	t.Helper()
	p := testutil.PatchACI(t, c.Image("busybox"), func(m *schema.ImageManifest) {
		m.Name = types.ACIdentifier(appName)
		m.Labels = types.Labels{{Name: "version", Value: version}, {Name: "os", Value: "linux"}, {Name: "arch", Value: "amd64"}}
	})
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// publish serves an image of version, signed with signer, where discovery
// finds it; tamper changes one byte of the image after signing.
func (s *imageServer) publish(t *testing.T, img []byte, version string, signer signingKey, tamper bool) string {
	t.Helper()
	p := "/images/app-" + version + "-linux-amd64.aci"
	sig := signer.sign(t, img)
	if tamper {
		img = bytes.Clone(img)
		img[len(img)/2] ^= 0x01
	}
	s.put(p, img)
	s.put(p+".asc", sig)
	return "https://localhost" + p
}

const discoveryHTML = `<!DOCTYPE html><html><head>
<meta name="ac-discovery" content="localhost/rkt-test https://localhost/images/app-{version}-{os}-{arch}.{ext}">
<meta name="ac-discovery-pubkeys" content="localhost/rkt-test https://localhost/pubkeys.asc">
</head></html>`

// TestTrustDiscovery is the Done-when of signed images: a signed ACI
// served over HTTPS with meta discovery is refused (exit 254, a message
// naming the key and the fix) until its key is trusted with rkt trust,
// and then runs; wrong signatures stay refused.
func TestTrustDiscovery(t *testing.T) {
	c := flyCtx(t)
	s := newImageServer(t)
	publisher, stranger := newSigningKey(t, "Image Publisher"), newSigningKey(t, "Someone Else")
	s.put("/rkt-test?ac-discovery=1", []byte(discoveryHTML))
	s.put("/pubkeys.asc", publisher.pub)
	s.publish(t, appImage(t, c, "1.0"), "1.0", publisher, false)
	s.publish(t, appImage(t, c, "2.0"), "2.0", publisher, true)
	s.publish(t, appImage(t, c, "3.0"), "3.0", stranger, false)
	run := []string{"run", "--stage1-name=fly", appName + ":1.0", "--exec", "/bin/sh", "--", "-c", "echo ok"}

	r := s.rkt(c, "", run...)
	if r.ExitCode != 254 {
		t.Fatalf("an image signed by an untrusted key ran: %v", r)
	}
	for _, want := range []string{appName, publisher.fp, "rkt trust --prefix=" + appName} {
		if !strings.Contains(r.Stderr, want) {
			t.Errorf("the refusal does not mention %q: %s", want, r.Stderr)
		}
	}
	if ims := imageList(t, c); len(ims) != 1 { // the stage1 only
		t.Errorf("the refused image was stored: %+v", ims)
	}

	// rkt trust discovers the key and asks before trusting it.
	r = s.rkt(c, "no\n", "trust", "--prefix=localhost/rkt-test")
	if r.ExitCode == 0 || !strings.Contains(r.Stdout, spacedFP(publisher.fp)) {
		t.Errorf("declining the key: want a failure and the fingerprint shown, got %v", r)
	}
	r = s.rkt(c, "yes\n", "trust", "--prefix=localhost/rkt-test")
	keyFile := filepath.Join(c.LocalConfigDir(), "trustedkeys", "prefix.d", "localhost", "rkt-test", publisher.fp)
	if r.ExitCode != 0 || !strings.Contains(r.Stdout, keyFile) {
		t.Fatalf("rkt trust: %v", r)
	}
	if _, err := os.Stat(keyFile); err != nil {
		t.Fatal(err)
	}

	r = s.rkt(c, "", run...)
	if r.ExitCode != 0 || strings.TrimSpace(r.Stdout) != "ok" {
		t.Fatalf("the trusted image did not run: %v", r)
	}
	r = s.rkt(c, "", "image", "verify", appName+":1.0")
	if r.ExitCode != 0 || !strings.Contains(r.Stdout, publisher.fp) {
		t.Errorf("rkt image verify: %v", r)
	}

	for _, tc := range []struct{ version, want string }{
		{"2.0", "tampered"},
		{"3.0", stranger.fp},
	} {
		r := s.rkt(c, "", "fetch", appName+":"+tc.version)
		if r.ExitCode != 254 || !strings.Contains(r.Stderr, tc.want) {
			t.Errorf("version %s: want exit code 254 and %q, got %v", tc.version, tc.want, r)
		}
	}
	if ims := imageList(t, c); len(ims) != 2 {
		t.Errorf("the store holds %d images, want the stage1 and version 1.0", len(ims))
	}
}

func spacedFP(fp string) string {
	var parts []string
	for i := 0; i < len(fp); i += 4 {
		parts = append(parts, fp[i:min(i+4, len(fp))])
	}
	return strings.Join(parts, " ")
}

// TestTrustHTTPCaching checks that an unchanged image is not downloaded
// again: not requested while its max-age lasts, revalidated with its ETag
// after; and that https:// URLs fetch directly.
func TestTrustHTTPCaching(t *testing.T) {
	c := testutil.New(t)
	s := newImageServer(t)
	k := newSigningKey(t, "Publisher")
	s.put("/rkt-test?ac-discovery=1", []byte(discoveryHTML))
	url := s.publish(t, appImage(t, c, "1.0"), "1.0", k, false)
	s.rkt(c, "", "trust", "--prefix="+appName, "--skip-fingerprint-review", k.pubFile)
	aciRequests := func() (n int, all []string) {
		all = s.requests()
		for _, r := range all {
			if strings.HasSuffix(r, ".aci") {
				n++
			}
		}
		return n, all
	}
	fetch := func(what string, wantRequests int) {
		t.Helper()
		aciRequests()
		r := s.rkt(c, "", "fetch", appName+":1.0")
		if !imageIDRx.MatchString(strings.TrimSpace(r.Stdout)) {
			t.Fatalf("%s: %v", what, r)
		}
		if n, all := aciRequests(); n != wantRequests {
			t.Errorf("%s: %d requests for the image, want %d (%v)", what, n, wantRequests, all)
		}
	}
	fetch("first fetch, max-age=0", 1)
	// Stale: revalidated with its ETag (the server answers 304 and now
	// allows an hour); fresh: not requested at all.
	s.setMaxAge(3600)
	fetch("revalidation", 1)
	fetch("fresh", 0)
	if r := s.rkt(c, "", "image", "list", "--no-legend"); strings.Count(r.Stdout, appName) != 1 {
		t.Errorf("the image is stored more than once:\n%s", r.Stdout)
	}
	id := strings.TrimSpace(s.rkt(c, "", "fetch", "--pull-policy=never", appName+":1.0").Stdout)

	// A direct URL, and a root key.
	c2 := testutil.New(t)
	if r := s.rkt(c2, "", "trust", "--root", "--skip-fingerprint-review", k.pubFile); r.ExitCode != 0 {
		t.Fatalf("rkt trust --root: %v", r)
	}
	if _, err := os.Stat(filepath.Join(c2.LocalConfigDir(), "trustedkeys", "root.d", k.fp)); err != nil {
		t.Error(err)
	}
	if r := s.rkt(c2, "", "fetch", url); strings.TrimSpace(r.Stdout) != id {
		t.Errorf("fetching %s: %v", url, r)
	}
}
