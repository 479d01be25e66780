package acifetch

import (
	"fmt"
	"io"

	"rkt.dev/rkt/stage0/image/remote"
	"rkt.dev/rkt/stage0/image/trust"
)

// Report is what VerifyStored found about an image.
type Report struct {
	ID, Name string
	// Signer is the fingerprint of the key that signed the image, and
	// Identity its user ID.
	Signer, Identity string
	// Rechecked is true when the signature was verified again against
	// the stored image; false when the stored image is not the signed
	// file (it was compressed), so that only the signer's key could be
	// checked against the trust store.
	Rechecked bool
}

// VerifyStored checks a stored image: that its blob still hashes to its
// ID, and that the signature it was fetched with still verifies against
// the trust store as it is now (a key removed or masked since is caught).
// An image without a signature fails: it was fetched with
// --insecure-options=image, or converted from a Docker image.
func VerifyStored(id string, o Options) (Report, error) {
	im, err := o.Store.Manifest(id)
	if err != nil {
		return Report{}, err
	}
	r := Report{ID: id, Name: im.Name.String()}
	if err := o.Store.Export(id, io.Discard); err != nil {
		return r, err
	}
	rec, ok := o.Index.Get(remote.SignatureKey + id)
	if !ok {
		if _, docker := im.Annotations.Get("appc.io/docker/originalname"); docker {
			return r, fmt.Errorf("image %s (%s) has no signature: it was converted from a Docker image, and Docker images carry none", r.Name, id)
		}
		return r, fmt.Errorf("image %s (%s) has no signature: it was fetched with --insecure-options=image; fetch it again with its signature to verify it", r.Name, id)
	}
	sig := []byte(rec.Signature)
	if rec.Digest == id {
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(o.Store.Export(id, pw)) }()
		k, err := o.Trust.Verify(r.Name, pr, sig)
		pr.Close()
		if err != nil {
			return r, err
		}
		r.Signer, r.Identity, r.Rechecked = k.Fingerprint, k.Identity(), true
		return r, nil
	}
	keys, err := o.Trust.KeysFor(r.Name)
	if err != nil {
		return r, err
	}
	for _, k := range keys {
		if k.Fingerprint == rec.Signer {
			r.Signer, r.Identity = k.Fingerprint, k.Identity()
			return r, nil
		}
	}
	return r, &trust.VerifyError{Image: r.Name, Signer: rec.Signer, Reason: trust.ErrUntrusted}
}
