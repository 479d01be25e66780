package acifetch

import (
	"errors"
	"fmt"
	"io"

	"rkt.dev/rkt/stage0/image"
	"rkt.dev/rkt/stage0/image/trust"
)

// Report is what VerifyStored found about an image.
type Report struct {
	ID, Name string
	// Signer is the fingerprint of the key that signed the image, and
	// Identity its user ID.
	Signer, Identity string
}

// VerifyStored checks a stored image: that the signature it was fetched
// with still verifies, against the trust store as it is now, the bytes it
// signed (the stored image, or the compressed file kept for an image
// fetched compressed), and that those bytes still are the stored image,
// which still hashes to its ID. A key removed, masked, expired or revoked
// since the fetch is caught, as is a damaged or swapped file.
//
// An image without a signature fails: it was fetched with
// --insecure-options=image, or converted from a Docker image.
func VerifyStored(id string, o Options) (Report, error) {
	im, err := o.Store.Manifest(id)
	if err != nil {
		return Report{}, err
	}
	r := Report{ID: id, Name: im.Name.String()}
	err = o.Store.ReadSigned(id, func(sig []byte, signed io.Reader) error {
		k, err := o.Trust.Verify(r.Name, signed, sig)
		var ve *trust.VerifyError
		if errors.As(err, &ve) {
			ve.ID = id // the fix names the stored image
		}
		if err != nil {
			return err
		}
		r.Signer, r.Identity = k.Fingerprint, k.Identity()
		return nil
	})
	if !errors.Is(err, image.ErrNoSignature) {
		return r, err
	}
	// Nothing to verify; still report a damaged image as damaged.
	if err := o.Store.Export(id, io.Discard); err != nil {
		return r, err
	}
	if _, docker := im.Annotations.Get("appc.io/docker/originalname"); docker {
		return r, unsignedError(fmt.Sprintf("image %s (%s) has no signature to verify: it was converted from a Docker or OCI image, and those carry none", r.Name, id))
	}
	return r, unsignedError(fmt.Sprintf("image %s (%s) has no signature to verify: it was fetched with --insecure-options=image; to verify it, remove it with 'rkt image rm %s' and fetch it again without that option", r.Name, id, id))
}

// unsignedError says why an image has no signature; it matches
// image.ErrNoSignature.
type unsignedError string

func (e unsignedError) Error() string { return string(e) }

func (e unsignedError) Unwrap() error { return image.ErrNoSignature }
