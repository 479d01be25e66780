package trust

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// newKey generates an Ed25519 key (fast, unlike RSA); cfg may set its
// creation time and lifetime.
func newKey(t *testing.T, cfg *packet.Config) *openpgp.Entity {
	t.Helper()
	if cfg == nil {
		cfg = &packet.Config{}
	}
	cfg.Algorithm = packet.PubKeyAlgoEdDSA
	e, err := openpgp.NewEntity("Test Signer", "", "signer@example.com", cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func armoredPublic(t *testing.T, e *openpgp.Entity) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Serialize(w); err != nil {
		t.Fatal(err)
	}
	w.Close()
	return buf.Bytes()
}

func sign(t *testing.T, e *openpgp.Entity, data []byte, cfg *packet.Config) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := openpgp.ArmoredDetachSign(&buf, e, bytes.NewReader(data), cfg); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestAddAndKeysFor(t *testing.T) {
	s := Store{SystemDir: t.TempDir(), LocalDir: t.TempDir()}
	root, app, sys := newKey(t, nil), newKey(t, nil), newKey(t, nil)
	if _, err := s.Add(armoredPublic(t, root), ""); err != nil {
		t.Fatal(err)
	}
	k, err := s.Add(armoredPublic(t, app), "example.com/app")
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(s.LocalDir, "trustedkeys/prefix.d/example.com/app", Fingerprint(app)); k.Path != want {
		t.Errorf("key stored at %s, want %s", k.Path, want)
	}
	// A system key, as a distribution would ship it.
	sysStore := Store{LocalDir: s.SystemDir}
	if _, err := sysStore.Add(armoredPublic(t, sys), "example.com"); err != nil {
		t.Fatal(err)
	}
	fps := func(name string) []string {
		keys, err := s.KeysFor(name)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, k := range keys {
			out = append(out, k.Fingerprint)
		}
		return out
	}
	tests := []struct {
		name string
		want []*openpgp.Entity
	}{
		{"example.com/app", []*openpgp.Entity{root, sys, app}},
		{"example.com/app/tools", []*openpgp.Entity{root, sys, app}},
		{"example.com/application", []*openpgp.Entity{root, sys}},
		{"other.org/x", []*openpgp.Entity{root}},
	}
	for _, tc := range tests {
		var want []string
		for _, e := range tc.want {
			want = append(want, Fingerprint(e))
		}
		if got := fps(tc.name); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("KeysFor(%s) = %v, want %v", tc.name, got, want)
		}
	}
	// An empty local file masks the system key.
	mask := filepath.Join(s.LocalDir, "trustedkeys/prefix.d/example.com", Fingerprint(sys))
	if err := os.MkdirAll(filepath.Dir(mask), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(mask, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if got := fps("example.com/x"); len(got) != 1 || got[0] != Fingerprint(root) {
		t.Errorf("masked system key still trusted: %v", got)
	}
}

func TestAddRefuses(t *testing.T) {
	s := Store{LocalDir: t.TempDir()}
	a, b := newKey(t, nil), newKey(t, nil)
	var priv bytes.Buffer
	w, _ := armor.Encode(&priv, openpgp.PrivateKeyType, nil)
	a.SerializePrivate(w, nil)
	w.Close()
	tests := []struct {
		name, prefix string
		key          []byte
		want         string
	}{
		{"garbage", "", []byte("not a key"), "not an armored OpenPGP public key"},
		{"two keys", "", append(armoredPublic(t, a), armoredPublic(t, b)...), "holds 2 keys"},
		{"private key", "", priv.Bytes(), "private key"},
		{"escaping prefix", "../../etc", armoredPublic(t, a), "not an image name"},
	}
	for _, tc := range tests {
		if _, err := s.Add(tc.key, tc.prefix); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error = %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestVerify(t *testing.T) {
	data := []byte("an image")
	trusted, stranger := newKey(t, nil), newKey(t, nil)
	past := time.Now().Add(-48 * time.Hour)
	expiredKey := newKey(t, &packet.Config{Time: func() time.Time { return past }, KeyLifetimeSecs: 3600})
	s := Store{LocalDir: t.TempDir()}
	for _, e := range []*openpgp.Entity{trusted, expiredKey} {
		if _, err := s.Add(armoredPublic(t, e), "example.com/app"); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name   string
		image  string
		signer *openpgp.Entity
		data   []byte
		cfg    *packet.Config
		reason error
	}{
		{"good", "example.com/app", trusted, data, nil, nil},
		{"untrusted key", "example.com/app", stranger, data, nil, ErrUntrusted},
		{"key of another prefix", "example.com/other", trusted, data, nil, ErrUntrusted},
		{"tampered image", "example.com/app", trusted, []byte("an imagE"), nil, ErrBad},
		{"expired key", "example.com/app", expiredKey, data, &packet.Config{Time: func() time.Time { return past.Add(time.Minute) }}, ErrExpired},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sig := sign(t, tc.signer, data, tc.cfg)
			k, err := s.Verify(tc.image, bytes.NewReader(tc.data), sig)
			if tc.reason == nil {
				if err != nil || k.Fingerprint != Fingerprint(tc.signer) {
					t.Fatalf("Verify = %+v, %v", k, err)
				}
				return
			}
			if !errors.Is(err, tc.reason) {
				t.Fatalf("error = %v, want %v", err, tc.reason)
			}
			for _, want := range []string{tc.image, Fingerprint(tc.signer)} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not name %s", err, want)
				}
			}
		})
	}
}

func TestIssuerOfGarbage(t *testing.T) {
	if got := Issuer([]byte("nope")); got != "(unknown)" {
		t.Errorf("Issuer = %q", got)
	}
}
