package aci

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
)

// Whiteout names of the OCI image layer format (and Docker's before it): a
// ".wh.NAME" entry deletes NAME from the layers below, and an entry called
// ".wh..wh..opq" makes its directory opaque, hiding everything the layers
// below have in it.
const (
	whiteoutPrefix = ".wh."
	opaqueWhiteout = whiteoutPrefix + whiteoutPrefix + ".opq"
)

var errWhiteout = errors.New("invalid whiteout")

// walkLayer checks every entry of the uncompressed tar stream of a Docker
// or OCI layer and hands the valid ones to visit. A layer holds a root
// filesystem directly ("etc/passwd", not "rootfs/etc/passwd"); its entries
// are checked exactly as the rootfs/ entries of an image, and visit sees
// them under rootfs/, so squashing can write them into an image unchanged.
//
// The differences from an image: whiteouts are recognised and reported
// (entry.whiteout, entry.opaque), aufs metadata (".wh..wh.*") is skipped,
// repeated directories are accepted, and a hard link may point to a path
// this layer does not have, which the caller must find in a layer below.
func walkLayer(r io.Reader, visit func(e entry, body io.Reader) error) error {
	c := newChecker()
	c.layer = true
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return invalid("", fmt.Errorf("reading layer: %w", err))
		}
		e, skip, err := c.check(hdr)
		if err != nil {
			return err
		}
		if skip {
			continue
		}
		if err := visit(e, tr); err != nil {
			return err
		}
	}
}

// checkWhiteout recognises the whiteout entries of a layer; ok is false
// for any other entry. A whiteout's own name must be safe like any other,
// and so must the name it deletes.
func (c *checker) checkWhiteout(hdr *tar.Header, name string) (e entry, skip, ok bool, err error) {
	base := path.Base(name)
	if !strings.HasPrefix(base, whiteoutPrefix) {
		return entry{}, false, false, nil
	}
	if err := c.checkPlace(name, kindRegular); err != nil {
		return entry{}, false, true, err
	}
	c.seen[name] = kindRegular
	dir := path.Dir(name)
	switch {
	case base == opaqueWhiteout:
		return entry{hdr: hdr, name: name, whiteout: dir, opaque: true}, false, true, nil
	case strings.HasPrefix(base, whiteoutPrefix+whiteoutPrefix):
		// aufs bookkeeping (.wh..wh.plnk, .wh..wh.aufs): not files.
		return entry{}, true, true, nil
	}
	target := strings.TrimPrefix(base, whiteoutPrefix)
	if target == "" || target == "." || target == ".." {
		return entry{}, false, true, fmt.Errorf("%w: %q names no file", errWhiteout, base)
	}
	return entry{hdr: hdr, name: name, whiteout: path.Join(dir, target)}, false, true, nil
}
