package aci

import (
	"errors"
	"fmt"
)

// InvalidError reports an archive that is not a valid, safe ACI: a broken
// compression or tar stream, a bad manifest, or an entry that breaks the
// layout or the safety policy. Callers use errors.As to tell a bad image
// (the user must fix or replace it) from an I/O failure of the host.
type InvalidError struct {
	// Entry is the offending tar entry name exactly as it appears in the
	// archive, or "" when the problem is not about one entry.
	Entry string
	// Err says what is wrong.
	Err error
}

func (e *InvalidError) Error() string {
	if e.Entry == "" {
		return fmt.Sprintf("corrupt image: %v", e.Err)
	}
	return fmt.Sprintf("corrupt image: entry %q: %v", e.Entry, e.Err)
}

func (e *InvalidError) Unwrap() error { return e.Err }

func invalid(entry string, err error) error { return &InvalidError{Entry: entry, Err: err} }

// The reasons an archive or an entry is refused, wrapped in an
// InvalidError; tests match them with errors.Is.
var (
	errAbsolutePath    = errors.New("absolute path")
	errPathEscapes     = errors.New("path escapes the image root")
	errBadEntry        = errors.New("invalid entry")
	errTopLevel        = errors.New(`only "manifest" and "rootfs/" may be at the top level of an image`)
	errDuplicate       = errors.New("duplicate entry")
	errSymlinkEscapes  = errors.New("symlink target escapes the image rootfs")
	errHardlinkTarget  = errors.New("hard link target is not an earlier regular file under rootfs/")
	errThroughSymlink  = errors.New("a parent directory is a symlink in this image; writing through it is not allowed")
	errParentNotDir    = errors.New("a parent directory is not a directory in this image")
	errReplacesDir     = errors.New("replaces a directory that earlier entries are in")
	errDevice          = errors.New("device nodes are not allowed in images")
	errUnsupportedType = errors.New("unsupported entry type")
	errSparse          = errors.New("sparse files are not allowed in images")
	errNoManifest      = errors.New(`missing "manifest"`)
	errNoRootfs        = errors.New(`missing "rootfs/"`)
	errManifest        = errors.New("invalid image manifest")
)
