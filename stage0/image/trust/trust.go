// Package trust is rkt's trust store: the OpenPGP public keys trusted to
// sign images, and the verification of an image's detached, armored
// signature (its .aci.asc) against them.
//
// # Layout
//
// Keys are files named by their lowercase hex fingerprint, holding the
// armored public key, in the trustedkeys directory of the system and the
// local configuration directories (/usr/lib/rkt, /etc/rkt):
//
//	trustedkeys/root.d/<fingerprint>                 trusted for every image
//	trustedkeys/prefix.d/<prefix>/<fingerprint>      for images named <prefix>...
//
// A prefix is an image name or a leading part of one at a "/" boundary:
// keys under prefix.d/example.com/app sign example.com/app and
// example.com/app/tools, never example.com/application. A key in the local
// directory replaces the system key of the same fingerprint and prefix,
// and an empty local file masks it: an operator can revoke what a
// distribution ships without editing /usr.
package trust

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/appc/spec/schema/types"
)

// maxKeySize bounds a key file read into memory; real keys are a few KiB.
const maxKeySize = 1 << 20

// Store is the trust store of a system and a local configuration
// directory (either may be empty).
type Store struct {
	SystemDir, LocalDir string
}

// Key is a trusted key.
type Key struct {
	// Fingerprint is the primary key's fingerprint in lowercase hex.
	Fingerprint string
	// Prefix is what the key is trusted for; "" for every image (root.d).
	Prefix string
	// Path is the key's file.
	Path   string
	Entity *openpgp.Entity
}

// Identity is the key's primary user ID ("Name <email>"), or "".
func (k Key) Identity() string { return identity(k.Entity) }

func identity(e *openpgp.Entity) string {
	if _, id := e.PrimarySelfSignature(); id != nil {
		return id.Name
	}
	for name := range e.Identities {
		return name
	}
	return ""
}

// ParseKey reads one armored OpenPGP public key.
func ParseKey(armored []byte) (*openpgp.Entity, error) {
	// The reader stops after the first armored block; refuse a second
	// rather than ignore it.
	if n := bytes.Count(armored, []byte("-----BEGIN PGP ")); n > 1 {
		return nil, fmt.Errorf("the file holds %d keys; give one key per file", n)
	}
	el, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(armored))
	if err != nil {
		return nil, fmt.Errorf("not an armored OpenPGP public key: %w", err)
	}
	if len(el) != 1 {
		return nil, fmt.Errorf("the file holds %d keys; give one key per file", len(el))
	}
	if el[0].PrivateKey != nil {
		return nil, errors.New("the file holds a private key; give the public key only (gpg --armor --export)")
	}
	return el[0], nil
}

// Fingerprint is an entity's primary key fingerprint in lowercase hex.
func Fingerprint(e *openpgp.Entity) string { return hex.EncodeToString(e.PrimaryKey.Fingerprint) }

// CheckPrefix validates a prefix: an image name, which cannot climb out of
// prefix.d.
func CheckPrefix(prefix string) error {
	if _, err := types.NewACIdentifier(prefix); err != nil {
		return fmt.Errorf("prefix %q is not an image name: %w", prefix, err)
	}
	return nil
}

func keyDir(configDir, prefix string) string {
	if prefix == "" {
		return filepath.Join(configDir, "trustedkeys", "root.d")
	}
	return filepath.Join(configDir, "trustedkeys", "prefix.d", filepath.FromSlash(prefix))
}

// Add writes a key to the local directory, trusted for prefix ("" for
// every image), and returns it. Adding a key twice is not an error.
func (s Store) Add(armored []byte, prefix string) (Key, error) {
	if s.LocalDir == "" {
		return Key{}, errors.New("no local configuration directory to store the key in")
	}
	if prefix != "" {
		if err := CheckPrefix(prefix); err != nil {
			return Key{}, err
		}
	}
	e, err := ParseKey(armored)
	if err != nil {
		return Key{}, err
	}
	k := Key{Fingerprint: Fingerprint(e), Prefix: prefix, Entity: e}
	dir := keyDir(s.LocalDir, prefix)
	k.Path = filepath.Join(dir, k.Fingerprint)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Key{}, fmt.Errorf("storing key %s: %w", k.Fingerprint, err)
	}
	// Store a clean armoring of exactly this public key.
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
	if err == nil {
		err = e.Serialize(w)
	}
	if err == nil {
		err = w.Close()
	}
	if err != nil {
		return Key{}, fmt.Errorf("encoding key %s: %w", k.Fingerprint, err)
	}
	tmp, err := os.CreateTemp(dir, ".tmp-")
	if err != nil {
		return Key{}, fmt.Errorf("storing key %s: %w", k.Fingerprint, err)
	}
	_, err = tmp.Write(buf.Bytes())
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), k.Path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return Key{}, fmt.Errorf("storing key %s in %s: %w", k.Fingerprint, dir, err)
	}
	return k, nil
}

// prefixes returns "" (root) and every prefix of name at "/" boundaries.
func prefixes(name string) []string {
	out := []string{""}
	parts := strings.Split(name, "/")
	for i := range parts {
		out = append(out, strings.Join(parts[:i+1], "/"))
	}
	return out
}

// KeysFor returns the keys trusted for images called name.
func (s Store) KeysFor(name string) ([]Key, error) {
	var keys []Key
	for _, prefix := range prefixes(name) {
		found := map[string]Key{}
		// System first, so a local file of the same name replaces it.
		for _, dir := range []string{s.SystemDir, s.LocalDir} {
			if dir == "" {
				continue
			}
			if err := readKeys(keyDir(dir, prefix), prefix, found); err != nil {
				return nil, err
			}
		}
		for _, k := range found {
			if k.Entity != nil {
				keys = append(keys, k)
			}
		}
	}
	return keys, nil
}

// readKeys adds the keys of one directory to found; an empty file
// records a mask (a Key without an Entity).
func readKeys(dir, prefix string, found map[string]Key) error {
	des, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading trusted keys: %w", err)
	}
	for _, de := range des {
		fp := de.Name()
		if !isFingerprint(fp) || de.IsDir() {
			continue
		}
		p := filepath.Join(dir, fp)
		b, err := readLimited(p)
		if err != nil {
			return fmt.Errorf("reading trusted key %s: %w", p, err)
		}
		k := Key{Fingerprint: fp, Prefix: prefix, Path: p}
		if len(b) > 0 {
			if k.Entity, err = ParseKey(b); err != nil {
				return fmt.Errorf("trusted key %s: %w; remove the file", p, err)
			}
			if got := Fingerprint(k.Entity); got != fp {
				return fmt.Errorf("trusted key %s holds key %s, not the key its name says; remove the file", p, got)
			}
		}
		found[fp] = k
	}
	return nil
}

func readLimited(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxKeySize+1))
	if err == nil && len(b) > maxKeySize {
		err = fmt.Errorf("larger than %d bytes", maxKeySize)
	}
	return b, err
}

func isFingerprint(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Reasons a signature is refused, matched with errors.Is.
var (
	ErrUntrusted = errors.New("the signing key is not trusted")
	ErrExpired   = errors.New("the key or the signature has expired")
	ErrRevoked   = errors.New("the signing key is revoked")
	ErrBad       = errors.New("the signature does not match")
)

// VerifyError is a refused signature. Its message names the image, the
// signing key and what to do.
type VerifyError struct {
	Image string
	// Signer is the signing key's fingerprint, or its key ID when the
	// signature names no fingerprint.
	Signer string
	Reason error
	Err    error // the OpenPGP library's error
	// ID is the image ID when a stored image was checked again (rkt
	// image verify), "" while an image is fetched: the fixes differ.
	ID string
}

func (e *VerifyError) Error() string {
	prefix, image, drop := e.Image, e.Image, ""
	if e.ID != "" {
		image = fmt.Sprintf("%s (%s)", e.Image, e.ID)
		drop = fmt.Sprintf(", and remove it with 'rkt image rm %s'", e.ID)
	}
	switch {
	case errors.Is(e.Reason, ErrUntrusted) && e.ID != "":
		return fmt.Sprintf("image %s is signed by key %s, which is no longer trusted for it; if you still trust that key, add it again with 'rkt trust --prefix=%s KEYFILE', otherwise remove the image with 'rkt image rm %s'", image, e.Signer, prefix, e.ID)
	case errors.Is(e.Reason, ErrUntrusted):
		return fmt.Sprintf("image %s is signed by key %s, which is not trusted for it; if you trust that key, add it with 'rkt trust --prefix=%s KEYFILE' (or skip verification with --insecure-options=image)", image, e.Signer, prefix)
	case errors.Is(e.Reason, ErrExpired):
		return fmt.Sprintf("image %s: the signature by key %s is no longer valid (%v); ask the publisher for a newly signed image or a renewed key, and trust it with 'rkt trust --prefix=%s'", image, e.Signer, e.Err, prefix)
	case errors.Is(e.Reason, ErrRevoked):
		return fmt.Sprintf("image %s: the signing key %s is revoked; do not use this image%s, and remove the key from the trust store", image, e.Signer, drop)
	default:
		return fmt.Sprintf("image %s: the signature by key %s does not match the image (%v): the image or its signature is corrupt or was tampered with; do not use it%s", image, e.Signer, e.Err, drop)
	}
}

func (e *VerifyError) Unwrap() error { return e.Reason }

// Verify checks that sig, an armored detached signature, signs the bytes
// of signed and was made by a key trusted for the image name. It returns
// the signing key.
func (s Store) Verify(name string, signed io.Reader, sig []byte) (Key, error) {
	keys, err := s.KeysFor(name)
	if err != nil {
		return Key{}, err
	}
	var ring openpgp.EntityList
	for _, k := range keys {
		ring = append(ring, k.Entity)
	}
	signer, err := openpgp.CheckArmoredDetachedSignature(ring, signed, bytes.NewReader(sig), nil)
	if err == nil {
		fp := Fingerprint(signer)
		for _, k := range keys {
			if k.Fingerprint == fp {
				return k, nil
			}
		}
		return Key{Fingerprint: fp, Entity: signer}, nil
	}
	ve := &VerifyError{Image: name, Signer: Issuer(sig), Err: err}
	switch {
	case errors.Is(err, pgperrors.ErrUnknownIssuer):
		ve.Reason = ErrUntrusted
	case errors.Is(err, pgperrors.ErrKeyExpired), errors.Is(err, pgperrors.ErrSignatureExpired):
		ve.Reason = ErrExpired
	case errors.Is(err, pgperrors.ErrKeyRevoked):
		ve.Reason = ErrRevoked
	default:
		ve.Reason = ErrBad
	}
	return Key{}, ve
}

// Issuer names the key that made an armored signature: its fingerprint
// when the signature carries one (every modern signer adds it), else its
// 16-digit key ID, else "(unknown)".
func Issuer(sig []byte) string {
	block, err := armor.Decode(bytes.NewReader(sig))
	if err != nil {
		return "(unknown)"
	}
	p, err := packet.NewReader(block.Body).Next()
	if err != nil {
		return "(unknown)"
	}
	s, ok := p.(*packet.Signature)
	switch {
	case !ok:
		return "(unknown)"
	case len(s.IssuerFingerprint) > 0:
		return hex.EncodeToString(s.IssuerFingerprint)
	case s.IssuerKeyId != nil:
		return fmt.Sprintf("%016x", *s.IssuerKeyId)
	}
	return "(unknown)"
}
