// Package initramfs writes the initial RAM filesystem of the KVM stage1
// guest: an uncompressed cpio archive in the "newc" format, which the kernel
// unpacks into its rootfs before running /init (the guest agent). It is
// not compressed because decompressing is the slow part of unpacking: under
// TCG, gunzipping the agent's archive cost the boot more than reading the
// three times larger plain one.
//
// The archive is written directly in Go rather than with cpio(1) or a
// busybox tool chain so that building a stage1 needs no shell tooling and the
// device nodes (/dev/console, /dev/null) can be created without root. Output
// is reproducible: entries are sorted, owned by root and dated at the epoch.
package initramfs

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
)

// File is one entry of the archive.
type File struct {
	// Path is the absolute, clean path inside the guest, such as "/init".
	Path string
	// Mode holds the type bits (none for a regular file, fs.ModeDir,
	// fs.ModeSymlink, fs.ModeDevice with or without fs.ModeCharDevice,
	// fs.ModeNamedPipe) and the permission bits, including setuid, setgid
	// and sticky.
	Mode fs.FileMode
	// Data is the content of a regular file or the target of a symlink.
	Data []byte
	// Source names a host file to take a regular file's content from
	// when Data is nil; it is read while the archive is written, so large
	// binaries are never held in memory.
	Source string
	// Major and Minor are the device numbers of a device node.
	Major, Minor uint32
}

// Standard returns the entries every rkt guest needs: the mount points the
// agent mounts on (/proc, /sys, /dev, /tmp, /run, /mnt), /dev/console (the
// kernel opens it as init's stdin, stdout and stderr before any devtmpfs is
// mounted) and /dev/null, and initBinary as the executable /init.
func Standard(initBinary string) []File {
	return []File{
		{Path: "/dev", Mode: fs.ModeDir | 0o755},
		{Path: "/dev/console", Mode: fs.ModeDevice | fs.ModeCharDevice | 0o600, Major: 5, Minor: 1},
		{Path: "/dev/null", Mode: fs.ModeDevice | fs.ModeCharDevice | 0o666, Major: 1, Minor: 3},
		{Path: "/init", Mode: 0o755, Source: initBinary},
		{Path: "/mnt", Mode: fs.ModeDir | 0o755},
		{Path: "/proc", Mode: fs.ModeDir | 0o555},
		{Path: "/run", Mode: fs.ModeDir | 0o755},
		{Path: "/sys", Mode: fs.ModeDir | 0o555},
		{Path: "/tmp", Mode: fs.ModeDir | fs.ModeSticky | 0o777},
	}
}

// Write writes files to w as an uncompressed newc archive. Missing parent
// directories are added with mode 0755, because the kernel's unpacker does
// not create them and would silently drop the entry. Each path may appear
// only once.
func Write(w io.Writer, files []File) error {
	entries, err := withParents(files)
	if err != nil {
		return err
	}
	cw := &cpioWriter{w: w}
	for i, f := range entries {
		if err := cw.writeFile(f, uint32(i+1)); err != nil {
			return fmt.Errorf("writing %s to the initramfs: %w", f.Path, err)
		}
	}
	if err := cw.writeTrailer(); err != nil {
		return fmt.Errorf("writing the initramfs trailer: %w", err)
	}
	return nil
}

// withParents validates files and returns them sorted by path with any
// missing parent directories added. Sorting puts every directory before its
// contents, since a path sorts before all paths it is a prefix of.
func withParents(files []File) ([]File, error) {
	byPath := make(map[string]File, len(files))
	for _, f := range files {
		if err := validate(f); err != nil {
			return nil, err
		}
		if _, dup := byPath[f.Path]; dup {
			return nil, fmt.Errorf("initramfs entry %s is given twice; keep one", f.Path)
		}
		byPath[f.Path] = f
	}
	for _, f := range files {
		for dir := path.Dir(f.Path); dir != "/"; dir = path.Dir(dir) {
			parent, ok := byPath[dir]
			if !ok {
				byPath[dir] = File{Path: dir, Mode: fs.ModeDir | 0o755}
				continue
			}
			if !parent.Mode.IsDir() {
				return nil, fmt.Errorf("initramfs entry %s needs %s to be a directory, but it is given as %v", f.Path, dir, parent.Mode.Type())
			}
		}
	}
	entries := make([]File, 0, len(byPath))
	for _, f := range byPath {
		entries = append(entries, f)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Path < entries[j].Path })
	return entries, nil
}

// validate rejects entries the kernel would misplace or that cannot be
// encoded.
func validate(f File) error {
	if !path.IsAbs(f.Path) || path.Clean(f.Path) != f.Path || f.Path == "/" {
		return fmt.Errorf("initramfs path %q must be absolute and clean (like /etc/hosts), and not /", f.Path)
	}
	if _, err := cpioMode(f.Mode); err != nil {
		return fmt.Errorf("initramfs entry %s: %w", f.Path, err)
	}
	switch typ := f.Mode.Type(); {
	case typ == 0:
		if f.Data != nil && f.Source != "" {
			return fmt.Errorf("initramfs entry %s has both Data and Source; give one", f.Path)
		}
	case typ == fs.ModeSymlink:
		if len(f.Data) == 0 {
			return fmt.Errorf("initramfs symlink %s has no target; put it in Data", f.Path)
		}
	default:
		if f.Data != nil || f.Source != "" {
			return fmt.Errorf("initramfs entry %s is a %v and cannot have content", f.Path, typ)
		}
	}
	return nil
}

// cpio mode bits (see cpio(5)); the permission, setuid, setgid and sticky
// bits share the layout of stat(2)'s st_mode.
const (
	cpioFifo    = 0o010000
	cpioChar    = 0o020000
	cpioDir     = 0o040000
	cpioBlock   = 0o060000
	cpioReg     = 0o100000
	cpioSymlink = 0o120000
	cpioSetuid  = 0o4000
	cpioSetgid  = 0o2000
	cpioSticky  = 0o1000
)

// cpioMode converts an fs.FileMode into a cpio mode field.
func cpioMode(m fs.FileMode) (uint32, error) {
	mode := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		mode |= cpioSetuid
	}
	if m&fs.ModeSetgid != 0 {
		mode |= cpioSetgid
	}
	if m&fs.ModeSticky != 0 {
		mode |= cpioSticky
	}
	switch m.Type() {
	case 0:
		return mode | cpioReg, nil
	case fs.ModeDir:
		return mode | cpioDir, nil
	case fs.ModeSymlink:
		return mode | cpioSymlink, nil
	case fs.ModeDevice | fs.ModeCharDevice:
		return mode | cpioChar, nil
	case fs.ModeDevice:
		return mode | cpioBlock, nil
	case fs.ModeNamedPipe:
		return mode | cpioFifo, nil
	default:
		return 0, fmt.Errorf("file type %v cannot be put in an initramfs", m.Type())
	}
}

// newcMagic starts every header of the "new ASCII" (SVR4, no checksum)
// format, the one the kernel's unpacker reads.
const newcMagic = "070701"

// trailerName marks the end of a cpio archive.
const trailerName = "TRAILER!!!"

// cpioWriter writes newc entries; headers and file data are each padded to
// a multiple of 4 bytes.
type cpioWriter struct {
	w io.Writer
}

// writeFile writes one entry, reading its content from f.Source if needed.
func (cw *cpioWriter) writeFile(f File, ino uint32) error {
	mode, err := cpioMode(f.Mode)
	if err != nil {
		return err
	}
	content := io.Reader(bytes.NewReader(f.Data))
	size := int64(len(f.Data))
	if f.Source != "" {
		src, err := os.Open(f.Source)
		if err != nil {
			return fmt.Errorf("opening its source: %w", err)
		}
		defer src.Close()
		info, err := src.Stat()
		if err != nil {
			return fmt.Errorf("reading the size of its source: %w", err)
		}
		if !info.Mode().IsRegular() {
			return fmt.Errorf("its source %s is not a regular file", f.Source)
		}
		content, size = src, info.Size()
	}
	if size > 0xFFFFFFFF {
		return fmt.Errorf("its content is %d bytes, more than a cpio archive can hold (4 GiB)", size)
	}
	nlink := uint32(1)
	if f.Mode.IsDir() {
		nlink = 2
	}
	name := strings.TrimPrefix(f.Path, "/")
	if err := cw.writeHeader(name, mode, ino, nlink, uint32(size), f.Major, f.Minor); err != nil {
		return err
	}
	n, err := io.CopyN(cw.w, content, size)
	if err != nil {
		return fmt.Errorf("copying its content (%d of %d bytes written; did the source change?): %w", n, size, err)
	}
	return cw.pad(size)
}

// writeTrailer ends the archive.
func (cw *cpioWriter) writeTrailer() error {
	return cw.writeHeader(trailerName, 0, 0, 1, 0, 0, 0)
}

// writeHeader writes a 110-byte newc header and the NUL-terminated name,
// padded. Fields are 8 hex digits: ino, mode, uid, gid, nlink, mtime,
// filesize, devmajor, devminor, rdevmajor, rdevminor, namesize, check.
func (cw *cpioWriter) writeHeader(name string, mode, ino, nlink, size, rdevMajor, rdevMinor uint32) error {
	hdr := fmt.Sprintf("%s%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		newcMagic, ino, mode, 0, 0, nlink, 0, size, 0, 0, rdevMajor, rdevMinor, len(name)+1, 0)
	if _, err := io.WriteString(cw.w, hdr+name+"\x00"); err != nil {
		return err
	}
	return cw.pad(int64(len(hdr) + len(name) + 1))
}

// pad writes the zero bytes that align the stream after n bytes.
func (cw *cpioWriter) pad(n int64) error {
	_, err := cw.w.Write(make([]byte, (4-n%4)%4))
	return err
}
