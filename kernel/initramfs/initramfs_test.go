package initramfs

import (
	"bytes"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// entry is one archive member as read back by readArchive.
type entry struct {
	name  string
	mode  uint32
	nlink uint32
	rdev  [2]uint32
	data  string
}

// readArchive decodes a newc archive independently of the writer,
// checking the alignment rules the kernel relies on.
func readArchive(t *testing.T, archive []byte) []entry {
	t.Helper()
	raw := archive
	var entries []entry
	for off := 0; ; {
		if off%4 != 0 {
			t.Fatalf("header at offset %d is not 4-byte aligned", off)
		}
		if len(raw) < off+110 {
			t.Fatalf("archive ends at %d without a trailer", len(raw))
		}
		hdr := string(raw[off : off+110])
		if !strings.HasPrefix(hdr, "070701") {
			t.Fatalf("bad magic %q at offset %d", hdr[:6], off)
		}
		field := func(i int) uint32 {
			v, err := strconv.ParseUint(hdr[6+8*i:14+8*i], 16, 32)
			if err != nil {
				t.Fatalf("header field %d at offset %d: %v", i, off, err)
			}
			return uint32(v)
		}
		size, nameSize := int(field(6)), int(field(11))
		nameEnd := off + 110 + nameSize
		name := string(raw[off+110 : nameEnd-1])
		if raw[nameEnd-1] != 0 {
			t.Fatalf("name of %q is not NUL-terminated", name)
		}
		if name == "TRAILER!!!" {
			return entries
		}
		dataStart := (nameEnd + 3) &^ 3
		entries = append(entries, entry{
			name:  name,
			mode:  field(1),
			nlink: field(4),
			rdev:  [2]uint32{field(9), field(10)},
			data:  string(raw[dataStart : dataStart+size]),
		})
		off = (dataStart + size + 3) &^ 3
	}
}

func TestWriteRoundTrip(t *testing.T) {
	dir := t.TempDir()
	initBin := filepath.Join(dir, "init")
	if err := os.WriteFile(initBin, []byte("\x7fELF pretend binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	files := append(Standard(initBin),
		File{Path: "/etc/rkt/agent.conf", Mode: 0o640, Data: []byte("a=1\n")},
		File{Path: "/bin/sh", Mode: fs.ModeSymlink | 0o777, Data: []byte("/init")},
		File{Path: "/usr/bin/suid", Mode: fs.ModeSetuid | 0o755, Data: []byte("x")},
		File{Path: "/dev/vda", Mode: fs.ModeDevice | 0o660, Major: 254, Minor: 0},
		File{Path: "/run/fifo", Mode: fs.ModeNamedPipe | 0o600},
		File{Path: "/empty", Mode: 0o644},
	)
	var buf bytes.Buffer
	if err := Write(&buf, files); err != nil {
		t.Fatal(err)
	}
	got := map[string]entry{}
	var order []string
	for _, e := range readArchive(t, buf.Bytes()) {
		got[e.name] = e
		order = append(order, e.name)
	}

	tests := []struct {
		name  string
		mode  uint32
		rdev  [2]uint32
		data  string
		nlink uint32
	}{
		{"dev/console", 0o020600, [2]uint32{5, 1}, "", 1},
		{"dev/null", 0o020666, [2]uint32{1, 3}, "", 1},
		{"dev/vda", 0o060660, [2]uint32{254, 0}, "", 1},
		{"init", 0o100755, [2]uint32{}, "\x7fELF pretend binary", 1},
		{"tmp", 0o041777, [2]uint32{}, "", 2},
		{"proc", 0o040555, [2]uint32{}, "", 2},
		{"sys", 0o040555, [2]uint32{}, "", 2},
		{"run", 0o040755, [2]uint32{}, "", 2},
		{"mnt", 0o040755, [2]uint32{}, "", 2},
		{"dev", 0o040755, [2]uint32{}, "", 2},
		{"etc", 0o040755, [2]uint32{}, "", 2},     // implicit parent
		{"bin", 0o040755, [2]uint32{}, "", 2},     // implicit parent
		{"usr", 0o040755, [2]uint32{}, "", 2},     // implicit parent
		{"usr/bin", 0o040755, [2]uint32{}, "", 2}, // implicit parent
		{"etc/rkt", 0o040755, [2]uint32{}, "", 2}, // implicit parent
		{"etc/rkt/agent.conf", 0o100640, [2]uint32{}, "a=1\n", 1},
		{"bin/sh", 0o120777, [2]uint32{}, "/init", 1},
		{"usr/bin/suid", 0o104755, [2]uint32{}, "x", 1},
		{"run/fifo", 0o010600, [2]uint32{}, "", 1},
		{"empty", 0o100644, [2]uint32{}, "", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, ok := got[tt.name]
			if !ok {
				t.Fatalf("missing from archive; have %v", order)
			}
			if e.mode != tt.mode {
				t.Errorf("mode = %#o, want %#o", e.mode, tt.mode)
			}
			if e.rdev != tt.rdev {
				t.Errorf("rdev = %v, want %v", e.rdev, tt.rdev)
			}
			if e.data != tt.data {
				t.Errorf("data = %q, want %q", e.data, tt.data)
			}
			if e.nlink != tt.nlink {
				t.Errorf("nlink = %d, want %d", e.nlink, tt.nlink)
			}
		})
	}
	if len(got) != len(tests) {
		t.Errorf("archive has %d entries, want %d: %v", len(got), len(tests), order)
	}
	seen := map[string]bool{}
	for _, name := range order {
		if dir := filepath.Dir(name); dir != "." && !seen[dir] {
			t.Errorf("%s comes before its directory %s", name, dir)
		}
		seen[name] = true
	}
}

func TestWriteIsReproducible(t *testing.T) {
	files := []File{
		{Path: "/b", Mode: 0o644, Data: []byte("b")},
		{Path: "/a/x", Mode: 0o644, Data: []byte("x")},
	}
	var first, second bytes.Buffer
	if err := Write(&first, files); err != nil {
		t.Fatal(err)
	}
	if err := Write(&second, []File{files[1], files[0]}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first.Bytes(), second.Bytes()) {
		t.Error("the same files in another order gave a different archive")
	}
}

func TestWriteRejects(t *testing.T) {
	tests := []struct {
		name  string
		files []File
		want  string
	}{
		{"relative path", []File{{Path: "init", Mode: 0o755}}, "must be absolute"},
		{"unclean path", []File{{Path: "/etc/../init", Mode: 0o755}}, "must be absolute and clean"},
		{"root", []File{{Path: "/", Mode: fs.ModeDir | 0o755}}, "and not /"},
		{"duplicate", []File{{Path: "/a", Mode: 0o644}, {Path: "/a", Mode: 0o600}}, "given twice"},
		{"data and source", []File{{Path: "/a", Mode: 0o644, Data: []byte("x"), Source: "/etc/hostname"}}, "both Data and Source"},
		{"symlink without target", []File{{Path: "/a", Mode: fs.ModeSymlink | 0o777}}, "has no target"},
		{"device with data", []File{{Path: "/dev/x", Mode: fs.ModeDevice | fs.ModeCharDevice | 0o600, Data: []byte("x")}}, "cannot have content"},
		{"socket", []File{{Path: "/s", Mode: fs.ModeSocket | 0o600}}, "cannot be put in an initramfs"},
		{"file as parent", []File{{Path: "/a", Mode: 0o644}, {Path: "/a/b", Mode: 0o644}}, "needs /a to be a directory"},
		{"missing source", []File{{Path: "/init", Mode: 0o755, Source: "/nonexistent/init"}}, "opening its source"},
		{"directory source", []File{{Path: "/init", Mode: 0o755, Source: "/"}}, "not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Write(io.Discard, tt.files)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Write() error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestCpioToolReadsArchive checks the format against GNU cpio, an
// implementation independent of this package and of readArchive.
func TestCpioToolReadsArchive(t *testing.T) {
	cpio, err := exec.LookPath("cpio")
	if err != nil {
		t.Skip("cpio(1) is not installed (apt-get install cpio)")
	}
	dir := t.TempDir()
	initBin := filepath.Join(dir, "init")
	if err := os.WriteFile(initBin, []byte("#!/bin/true\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Write(&buf, Standard(initBin)); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(cpio, "-itv", "--quiet")
	cmd.Stdin = &buf
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("cpio -itv: %v\n%s", err, out)
	}
	listing := string(out)
	for _, want := range []string{
		"crw-------   1 root     root       5,   1", "dev/console",
		"crw-rw-rw-   1 root     root       1,   3", "dev/null",
		"-rwxr-xr-x   1 root     root           12", "init",
		"drwxrwxrwt", "tmp",
	} {
		if !strings.Contains(listing, want) {
			t.Errorf("cpio listing lacks %q:\n%s", want, listing)
		}
	}
}
