package aci

import (
	"archive/tar"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ExtractOptions select what Extract writes.
type ExtractOptions struct {
	// RootfsOnly writes the contents of rootfs/ into the target directory
	// itself and skips the manifest.
	RootfsOnly bool
	// Keep, when set, decides for every entry below rootfs/ whether it is
	// written; p is the entry's absolute path inside the rootfs
	// ("/etc/passwd"). Rendering uses it to apply pathWhitelist. Parent
	// directories of a kept entry are created even if Keep drops them.
	Keep func(p string, dir bool) bool
}

// Extract writes the uncompressed ACI tar stream r into dest, an existing
// directory, applying the package's safety policy to every entry. Entries
// already in dest are overwritten, which is how dependency layers stack.
//
// On error dest holds a partial extraction: callers extract into a
// temporary directory and rename it into place when Extract succeeds.
func Extract(r io.Reader, dest string, opts ExtractOptions) error {
	root, err := unix.Open(dest, openDirFlags, 0)
	if err != nil {
		return fmt.Errorf("opening extraction target %s: %w", dest, err)
	}
	defer unix.Close(root)

	x := &extractor{
		root:    root,
		opts:    opts,
		chown:   os.Geteuid() == 0,
		written: make(map[string]bool),
	}
	if _, _, err := walk(r, x.write); err != nil {
		return err
	}
	return x.finishDirs()
}

// extractor writes checked entries below one root directory descriptor.
type extractor struct {
	root  int
	opts  ExtractOptions
	chown bool
	// written holds the archive names of the regular files written so far:
	// the only valid hard-link targets.
	written map[string]bool
	// dirs get their mode, owner and times once all entries are written:
	// earlier, a read-only directory would refuse its own entries and every
	// new entry would change its mtime.
	dirs []dirEntry
}

type dirEntry struct {
	rel string
	hdr *tar.Header
}

// wanted reports whether an entry is written at all.
func (x *extractor) wanted(e entry) bool {
	if e.name == manifestName {
		return !x.opts.RootfsOnly
	}
	if x.opts.Keep == nil || e.name == rootfsName {
		return true
	}
	return x.opts.Keep(strings.TrimPrefix(e.name, rootfsName), e.hdr.Typeflag == tar.TypeDir)
}

// rel maps an archive name to a path relative to the root directory.
func (x *extractor) rel(name string) string {
	switch {
	case !x.opts.RootfsOnly:
		return name
	case name == rootfsName:
		return "."
	default:
		return strings.TrimPrefix(name, rootfsName+"/")
	}
}

func (x *extractor) write(e entry, r io.Reader) error {
	if !x.wanted(e) {
		return nil
	}
	rel := x.rel(e.name)
	if rel == "." {
		x.dirs = append(x.dirs, dirEntry{rel: rel, hdr: e.hdr})
		return nil
	}
	parent, err := openDir(x.root, path.Dir(rel), true)
	if err != nil {
		return fmt.Errorf("extracting %q: %w", e.hdr.Name, err)
	}
	defer unix.Close(parent)
	base := path.Base(rel)

	switch e.hdr.Typeflag {
	case tar.TypeDir:
		err = x.mkdir(parent, base)
		x.dirs = append(x.dirs, dirEntry{rel: rel, hdr: e.hdr})
	case tar.TypeSymlink:
		err = x.symlink(parent, base, e.hdr)
	case tar.TypeLink:
		err = x.hardlink(parent, base, e)
	case tar.TypeFifo:
		err = x.fifo(parent, base, e.hdr)
	default:
		err = x.regular(parent, base, e.hdr, r)
	}
	if err != nil {
		return fmt.Errorf("extracting %q: %w", e.hdr.Name, err)
	}
	if e.hdr.Typeflag == tar.TypeReg || e.hdr.Typeflag == tar.TypeLink {
		x.written[e.name] = true
	}
	return nil
}

// mkdir keeps an existing directory (an earlier layer's) and replaces
// anything else. The directory starts private; finishDirs sets its mode.
func (x *extractor) mkdir(dir int, name string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(dir, name, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return nil
	}
	if err := removeAt(dir, name); err != nil {
		return err
	}
	return unix.Mkdirat(dir, name, 0o700)
}

func (x *extractor) regular(dir int, name string, hdr *tar.Header, r io.Reader) error {
	if err := removeAt(dir, name); err != nil {
		return err
	}
	fd, err := unix.Openat(dir, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), name)
	err = writeContents(f, hdr, r, x.chown)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return setTimes(dir, name, hdr)
}

// writeContents copies the data and then sets owner and mode, in that
// order because chown(2) clears the setuid and setgid bits.
func writeContents(f *os.File, hdr *tar.Header, r io.Reader, chown bool) error {
	if _, err := io.Copy(f, r); err != nil {
		return err
	}
	if chown {
		if err := unix.Fchown(int(f.Fd()), hdr.Uid, hdr.Gid); err != nil {
			return err
		}
	}
	return unix.Fchmod(int(f.Fd()), permBits(hdr))
}

func (x *extractor) symlink(dir int, name string, hdr *tar.Header) error {
	if err := removeAt(dir, name); err != nil {
		return err
	}
	if err := unix.Symlinkat(hdr.Linkname, dir, name); err != nil {
		return err
	}
	if err := x.setOwner(dir, name, hdr); err != nil {
		return err
	}
	return setTimes(dir, name, hdr)
}

func (x *extractor) hardlink(dir int, name string, e entry) error {
	if !x.written[e.link] {
		// The checker guarantees the target is an earlier regular file,
		// so only Keep can have dropped it.
		return fmt.Errorf("hard link target %q is excluded by pathWhitelist; whitelist both paths", e.hdr.Linkname)
	}
	rel := x.rel(e.link)
	tdir, err := openDir(x.root, path.Dir(rel), false)
	if err != nil {
		return err
	}
	defer unix.Close(tdir)
	if err := removeAt(dir, name); err != nil {
		return err
	}
	return unix.Linkat(tdir, path.Base(rel), dir, name, 0)
}

func (x *extractor) fifo(dir int, name string, hdr *tar.Header) error {
	if err := removeAt(dir, name); err != nil {
		return err
	}
	if err := unix.Mknodat(dir, name, unix.S_IFIFO|0o600, 0); err != nil {
		return err
	}
	if err := x.setOwner(dir, name, hdr); err != nil {
		return err
	}
	// The FIFO was just created by name in a directory reached without
	// following symlinks, so chmod by name cannot be redirected.
	if err := unix.Fchmodat(dir, name, permBits(hdr), 0); err != nil {
		return err
	}
	return setTimes(dir, name, hdr)
}

func (x *extractor) setOwner(dir int, name string, hdr *tar.Header) error {
	if !x.chown {
		return nil
	}
	return unix.Fchownat(dir, name, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW)
}

// finishDirs applies directory metadata, deepest directories first so a
// parent that becomes read-only or untraversable does not hide its
// children.
func (x *extractor) finishDirs() error {
	sort.SliceStable(x.dirs, func(i, j int) bool {
		return strings.Count(x.dirs[i].rel, "/") > strings.Count(x.dirs[j].rel, "/")
	})
	for _, d := range x.dirs {
		if err := x.finishDir(d); err != nil {
			return fmt.Errorf("extracting %q: %w", d.hdr.Name, err)
		}
	}
	return nil
}

func (x *extractor) finishDir(d dirEntry) error {
	fd, err := openDir(x.root, d.rel, false)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if x.chown {
		if err := unix.Fchown(fd, d.hdr.Uid, d.hdr.Gid); err != nil {
			return err
		}
	}
	if err := unix.Fchmod(fd, permBits(d.hdr)); err != nil {
		return err
	}
	return setTimes(fd, ".", d.hdr)
}

// permBits are the permission bits of an entry, including setuid, setgid
// and sticky, which images legitimately use (su, /tmp).
func permBits(hdr *tar.Header) uint32 { return uint32(hdr.Mode & 0o7777) }

// setTimes applies the entry's access and modification times to name in
// dir without following a symlink.
func setTimes(dir int, name string, hdr *tar.Header) error {
	atime := hdr.AccessTime
	if atime.IsZero() {
		atime = hdr.ModTime
	}
	ts := []unix.Timespec{timespec(atime), timespec(hdr.ModTime)}
	return unix.UtimesNanoAt(dir, name, ts, unix.AT_SYMLINK_NOFOLLOW)
}

func timespec(t time.Time) unix.Timespec {
	return unix.Timespec{Sec: t.Unix(), Nsec: int64(t.Nanosecond())}
}
