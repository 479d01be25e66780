package aci

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/appc/spec/schema"
)

// Validate reads an uncompressed ACI tar stream up to the end of the
// archive and checks its layout, its manifest and every entry against the
// safety policy (see the package documentation). It returns the manifest
// both parsed and as the bytes found in the image.
//
// Validate does not read past the end-of-archive marker, so a caller that
// hashes the stream must drain r afterwards.
func Validate(r io.Reader) (*schema.ImageManifest, []byte, error) {
	return walk(r, func(entry, io.Reader) error { return nil })
}

// walk checks every entry of the archive r and hands the valid ones, with
// their contents, to visit. Validation and extraction share it so that they
// can never disagree about what is acceptable.
func walk(r io.Reader, visit func(e entry, body io.Reader) error) (*schema.ImageManifest, []byte, error) {
	c := newChecker()
	tr := tar.NewReader(r)
	var (
		im  *schema.ImageManifest
		raw []byte
	)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, invalid("", fmt.Errorf("reading archive: %w", err))
		}
		e, skip, err := c.check(hdr)
		if err != nil {
			return nil, nil, err
		}
		if skip {
			continue
		}
		var body io.Reader = tr
		if e.name == manifestName {
			if raw, err = io.ReadAll(io.LimitReader(tr, maxManifestSize+1)); err != nil {
				return nil, nil, invalid(hdr.Name, fmt.Errorf("reading the manifest: %w", err))
			}
			if im, err = ParseManifest(raw); err != nil {
				return nil, nil, invalid(hdr.Name, err)
			}
			body = bytes.NewReader(raw)
		}
		if err := visit(e, body); err != nil {
			return nil, nil, err
		}
	}
	if err := c.finish(); err != nil {
		return nil, nil, err
	}
	return im, raw, nil
}
