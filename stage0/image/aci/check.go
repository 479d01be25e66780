package aci

import (
	"archive/tar"
	"fmt"
	"math"
	"path"
	"strings"
)

// Archive-level names of the two top-level entries.
const (
	manifestName = "manifest"
	rootfsName   = "rootfs"
)

// kind is what an archive path turned out to be, as far as later entries
// are concerned.
type kind uint8

const (
	kindImplicitDir kind = iota + 1 // a parent of an entry, without an entry of its own
	kindDir
	kindRegular // regular files and hard links to them
	kindSymlink
	kindFIFO
)

// entry is a tar header that passed the checks.
type entry struct {
	hdr *tar.Header
	// name is the clean archive path: "manifest", "rootfs" or "rootfs/...".
	name string
	// link is the clean archive path of a hard link's target.
	link string
	// whiteout, in a layer, is the clean archive path that a ".wh." entry
	// deletes from the layers below; opaque is set when that entry is
	// ".wh..wh..opq", which hides the contents of its directory instead.
	whiteout string
	opaque   bool
}

// checker applies the layout and safety policy to the headers of one
// archive, in order. It remembers every path it has seen, which is what
// duplicate, hard-link and parent checks need.
type checker struct {
	seen     map[string]kind
	manifest bool
	// layer is set for a Docker or OCI layer (see walkLayer): names are
	// relative to the root filesystem, ".wh." entries are whiteouts, and a
	// hard link may point to a file of a layer below.
	layer bool
}

func newChecker() *checker { return &checker{seen: make(map[string]kind)} }

// name cleans an entry or hard-link name into an archive path. A layer's
// names are checked as if the layer were the rootfs/ of an image, so one
// policy covers both.
func (c *checker) name(raw string) (string, error) {
	if !c.layer {
		return cleanName(raw)
	}
	if strings.HasPrefix(raw, "/") {
		return "", errAbsolutePath
	}
	return cleanName(rootfsName + "/" + raw)
}

// check validates one header. skip is true for headers that carry no file
// (a pax global header, the archive root "./").
func (c *checker) check(hdr *tar.Header) (e entry, skip bool, err error) {
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return entry{}, true, nil
	}
	fail := func(err error) (entry, bool, error) { return entry{}, false, invalid(hdr.Name, err) }

	name, err := c.name(hdr.Name)
	if err != nil {
		return fail(err)
	}
	if c.layer {
		if e, skip, ok, err := c.checkWhiteout(hdr, name); ok {
			if err != nil {
				return fail(err)
			}
			return e, skip, nil
		}
	}
	if name == "." {
		if hdr.Typeflag != tar.TypeDir {
			return fail(fmt.Errorf("%w: the archive root must be a directory", errBadEntry))
		}
		return entry{}, true, nil
	}
	if err := checkTopLevel(name, hdr.Typeflag); err != nil {
		return fail(err)
	}
	if err := checkOwner(hdr); err != nil {
		return fail(err)
	}
	if isSparse(hdr) {
		return fail(errSparse)
	}
	k, err := entryKind(hdr.Typeflag)
	if err != nil {
		return fail(err)
	}
	if err := c.checkPlace(name, k); err != nil {
		return fail(err)
	}

	e = entry{hdr: hdr, name: name}
	switch hdr.Typeflag {
	case tar.TypeSymlink:
		err = checkSymlink(name, hdr.Linkname)
	case tar.TypeLink:
		e.link, err = c.hardlinkTarget(hdr.Linkname)
	}
	if err != nil {
		return fail(err)
	}

	c.seen[name] = k
	if name == manifestName {
		c.manifest = true
	}
	return e, false, nil
}

// finish reports what is missing once all headers were checked.
func (c *checker) finish() error {
	if !c.manifest {
		return invalid("", errNoManifest)
	}
	if _, ok := c.seen[rootfsName]; !ok {
		return invalid("", errNoRootfs)
	}
	return nil
}

func checkTopLevel(name string, typ byte) error {
	top, _, below := strings.Cut(name, "/")
	switch {
	case top == manifestName && !below:
		if typ != tar.TypeReg {
			return fmt.Errorf("%w: the manifest must be a regular file", errBadEntry)
		}
	case top == rootfsName && !below:
		if typ != tar.TypeDir {
			return fmt.Errorf("%w: rootfs must be a directory", errBadEntry)
		}
	case top != rootfsName:
		return errTopLevel
	}
	return nil
}

// checkOwner refuses ids that chown(2) cannot take; -1 would even mean
// "leave unchanged".
func checkOwner(hdr *tar.Header) error {
	if hdr.Uid < 0 || hdr.Gid < 0 || hdr.Uid >= math.MaxUint32 || hdr.Gid >= math.MaxUint32 {
		return fmt.Errorf("%w: owner %d:%d is out of range", errBadEntry, hdr.Uid, hdr.Gid)
	}
	return nil
}

func entryKind(typ byte) (kind, error) {
	switch typ {
	case tar.TypeReg, tar.TypeLink:
		return kindRegular, nil
	case tar.TypeDir:
		return kindDir, nil
	case tar.TypeSymlink:
		return kindSymlink, nil
	case tar.TypeFifo:
		return kindFIFO, nil
	case tar.TypeChar, tar.TypeBlock:
		return 0, errDevice
	default:
		return 0, fmt.Errorf("%w %q", errUnsupportedType, typ)
	}
}

// isSparse reports a GNU sparse file, in the old GNU format or as pax
// records. The tar reader would expand its holes into zeros, so a tiny
// image could fill the disk when extracted; images have no use for them.
func isSparse(hdr *tar.Header) bool {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// checkPlace refuses duplicates and entries whose parents are not
// directories of this archive, and records implied parent directories.
func (c *checker) checkPlace(name string, k kind) error {
	if prev, ok := c.seen[name]; ok {
		if prev == kindImplicitDir && k == kindDir {
			return nil
		}
		// Layer tools repeat directories (a tar of overlapping paths);
		// the last one's metadata wins, as when layers stack.
		if c.layer && prev == kindDir && k == kindDir {
			return nil
		}
		if prev == kindImplicitDir {
			return errReplacesDir
		}
		return errDuplicate
	}
	for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
		switch c.seen[dir] {
		case 0:
			c.seen[dir] = kindImplicitDir
		case kindSymlink:
			return errThroughSymlink
		case kindRegular, kindFIFO:
			return errParentNotDir
		}
	}
	return nil
}

func checkSymlink(name, target string) error {
	switch {
	case target == "":
		return fmt.Errorf("%w: empty symlink target", errBadEntry)
	case strings.ContainsRune(target, 0):
		return fmt.Errorf("%w: symlink target contains a NUL byte", errBadEntry)
	case len(target) > maxPath:
		return fmt.Errorf("%w: symlink target longer than %d bytes", errBadEntry, maxPath)
	case !strings.HasPrefix(target, "/") && symlinkEscapes(name, target):
		return fmt.Errorf("%w: %q", errSymlinkEscapes, target)
	}
	return nil
}

func (c *checker) hardlinkTarget(raw string) (string, error) {
	target, err := c.name(raw)
	if err != nil {
		return "", fmt.Errorf("hard link target %q: %w", raw, err)
	}
	if _, ok := c.seen[target]; c.layer && !ok && strings.HasPrefix(target, rootfsName+"/") {
		// A file of a layer below: the squash checks it exists there.
		return target, nil
	}
	if !strings.HasPrefix(target, rootfsName+"/") || c.seen[target] != kindRegular {
		return "", fmt.Errorf("%w: %q", errHardlinkTarget, raw)
	}
	return target, nil
}
