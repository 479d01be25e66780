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

// The reasons an entry is refused. They are wrapped in an InvalidError that
// names the entry; tests and callers may match them with errors.Is.
var (
	ErrAbsolutePath    = errors.New("absolute path")
	ErrPathEscapes     = errors.New("path escapes the image root")
	ErrBadName         = errors.New("invalid name")
	ErrTopLevel        = errors.New(`only "manifest" and "rootfs/" may be at the top level of an image`)
	ErrDuplicate       = errors.New("duplicate entry")
	ErrSymlinkEscapes  = errors.New("symlink target escapes the image rootfs")
	ErrHardlinkTarget  = errors.New("hard link target is not an earlier regular file under rootfs/")
	ErrThroughSymlink  = errors.New("a parent directory is a symlink in this image; writing through it is not allowed")
	ErrParentNotDir    = errors.New("a parent directory is not a directory in this image")
	ErrReplacesDir     = errors.New("replaces a directory that earlier entries are in")
	ErrDevice          = errors.New("device nodes are not allowed in images")
	ErrUnsupportedType = errors.New("unsupported entry type")
	ErrSparse          = errors.New("sparse files are not allowed in images")
	ErrNoManifest      = errors.New(`missing "manifest"`)
	ErrNoRootfs        = errors.New(`missing "rootfs/"`)
	ErrManifest        = errors.New("invalid image manifest")
)
