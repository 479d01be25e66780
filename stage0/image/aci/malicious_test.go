package aci

import (
	"archive/tar"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	. "rkt.dev/rkt/stage0/image/internal/acitest"
)

// badImage is an archive that must be refused, the entry the error must
// name ("" for archive-level problems) and the reason.
type badImage struct {
	name    string
	entries func(t testing.TB) []Entry
	entry   string
	reason  error
}

// badImages are the malicious and malformed archives that both Validate and
// Extract refuse.
var badImages = []badImage{
	{"dotdot path", img(File("rootfs/../x", "x")), "rootfs/../x", errPathEscapes},
	{"dotdot at the start", img(File("../x", "x")), "../x", errPathEscapes},
	{"absolute path", img(File("/etc/passwd", "x")), "/etc/passwd", errAbsolutePath},
	{"symlink climbing out", img(Symlink("rootfs/a", "../etc")), "rootfs/a", errSymlinkEscapes},
	{"nested symlink climbing out", img(Dir("rootfs/d"), Symlink("rootfs/d/l", "../../../x")), "rootfs/d/l", errSymlinkEscapes},
	{"write through symlink", img(Symlink("rootfs/a", "/etc"), File("rootfs/a/passwd", "x")), "rootfs/a/passwd", errThroughSymlink},
	{"write through relative symlink", img(Dir("rootfs/d"), Symlink("rootfs/l", "d"), File("rootfs/l/f", "x")), "rootfs/l/f", errThroughSymlink},
	{"hardlink outside", img(Hardlink("rootfs/l", "../etc/passwd")), "rootfs/l", errPathEscapes},
	{"hardlink absolute", img(Hardlink("rootfs/l", "/etc/passwd")), "rootfs/l", errAbsolutePath},
	{"hardlink to missing path", img(Hardlink("rootfs/l", "rootfs/nothere")), "rootfs/l", errHardlinkTarget},
	{"hardlink to later file", img(Hardlink("rootfs/l", "rootfs/f"), File("rootfs/f", "x")), "rootfs/l", errHardlinkTarget},
	{"hardlink to manifest", img(Hardlink("rootfs/l", "manifest")), "rootfs/l", errHardlinkTarget},
	{"hardlink to directory", img(Dir("rootfs/d"), Hardlink("rootfs/l", "rootfs/d")), "rootfs/l", errHardlinkTarget},
	{"hardlink to symlink", img(Symlink("rootfs/s", "/etc/shadow"), Hardlink("rootfs/l", "rootfs/s")), "rootfs/l", errHardlinkTarget},
	{"char device", img(Entry{Name: "rootfs/mem", Type: tar.TypeChar}), "rootfs/mem", errDevice},
	{"block device", img(Entry{Name: "rootfs/sda", Type: tar.TypeBlock}), "rootfs/sda", errDevice},
	{"unsupported type", img(Entry{Name: "rootfs/c", Type: tar.TypeCont}), "rootfs/c", errUnsupportedType},
	{"duplicate file", img(File("rootfs/a", "1"), File("rootfs/a", "2")), "rootfs/a", errDuplicate},
	{"duplicate after cleaning", img(File("rootfs/a", "1"), File("./rootfs//a", "2")), "./rootfs//a", errDuplicate},
	{"duplicate manifest", img(File("manifest", "{}")), "manifest", errDuplicate},
	{"file replacing implied dir", img(File("rootfs/a/b", "1"), Symlink("rootfs/a", "/etc")), "rootfs/a", errReplacesDir},
	{"file below a file", img(File("rootfs/f", "1"), File("rootfs/f/x", "2")), "rootfs/f/x", errParentNotDir},
	{"extra top-level entry", img(File("etc/passwd", "x")), "etc/passwd", errTopLevel},
	{"extra top-level file", img(File("README", "x")), "README", errTopLevel},
	{"rootfs is a symlink", raw(File("manifest", validManifest), Symlink("rootfs", "/")), "rootfs", errBadEntry},
	{"manifest is a directory", raw(Dir("manifest"), Dir("rootfs")), "manifest", errBadEntry},
	{"missing manifest", raw(Dir("rootfs"), File("rootfs/a", "x")), "", errNoManifest},
	{"missing rootfs", raw(File("manifest", validManifest)), "", errNoRootfs},
	{"empty archive", raw(), "", errNoManifest},
	{"manifest too large", raw(File("manifest", strings.Repeat(" ", maxManifestSize+1)), Dir("rootfs")), "manifest", errManifest},
	{"manifest not JSON", raw(File("manifest", "{not json"), Dir("rootfs")), "manifest", errManifest},
	{"manifest wrong kind", raw(File("manifest", `{"acKind":"PodManifest","acVersion":"0.8.11","name":"x"}`), Dir("rootfs")), "manifest", errManifest},
	{"manifest without name", raw(File("manifest", `{"acKind":"ImageManifest","acVersion":"0.8.11"}`), Dir("rootfs")), "manifest", errManifest},
	{"manifest bad name", raw(File("manifest", `{"acKind":"ImageManifest","acVersion":"0.8.11","name":"Not Valid!"}`), Dir("rootfs")), "manifest", errManifest},
	{"manifest relative whitelist", raw(File("manifest", `{"acKind":"ImageManifest","acVersion":"0.8.11","name":"x","pathWhitelist":["etc"]}`), Dir("rootfs")), "manifest", errManifest},
	{"manifest bad dependency id", raw(File("manifest", `{"acKind":"ImageManifest","acVersion":"0.8.11","name":"x","dependencies":[{"imageName":"y","imageID":"sha512-XYZ"}]}`), Dir("rootfs")), "manifest", errManifest},
	{"component too long", img(File("rootfs/"+strings.Repeat("a", 256), "x")), "rootfs/" + strings.Repeat("a", 256), errBadEntry},
	{"empty symlink target", img(Symlink("rootfs/l", "")), "rootfs/l", errBadEntry},
}

const validManifest = `{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/test"}`

// img is a valid image with extra entries appended.
func img(extra ...Entry) func(t testing.TB) []Entry {
	return func(t testing.TB) []Entry { return Image(t, "example.com/test", extra...) }
}

// raw is exactly the given entries.
func raw(entries ...Entry) func(t testing.TB) []Entry {
	return func(testing.TB) []Entry { return entries }
}

func checkRefusal(t *testing.T, tc badImage, err error) {
	t.Helper()
	var ie *InvalidError
	if !errors.As(err, &ie) {
		t.Fatalf("error = %v, want an *InvalidError", err)
	}
	if ie.Entry != tc.entry {
		t.Errorf("error names entry %q, want %q (error: %v)", ie.Entry, tc.entry, err)
	}
	if !errors.Is(err, tc.reason) {
		t.Errorf("error = %v, want reason %v", err, tc.reason)
	}
	if tc.entry != "" && !strings.Contains(err.Error(), tc.entry) {
		t.Errorf("message %q does not name the entry", err)
	}
}

func TestValidateRefusesBadImages(t *testing.T) {
	for _, tc := range badImages {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Validate(bytes.NewReader(Build(t, tc.entries(t)...)))
			checkRefusal(t, tc, err)
		})
	}
}

func TestExtractRefusesBadImagesAndStaysInside(t *testing.T) {
	for _, tc := range badImages {
		t.Run(tc.name, func(t *testing.T) {
			top := t.TempDir()
			dest := filepath.Join(top, "dest")
			outside := filepath.Join(top, "etc")
			for _, d := range []string{dest, outside} {
				if err := os.Mkdir(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			err := Extract(bytes.NewReader(Build(t, tc.entries(t)...)), dest, ExtractOptions{})
			checkRefusal(t, tc, err)
			AssertEntries(t, top, "dest", "etc")
			AssertEntries(t, outside)
		})
	}
}

// Sparse files cannot be written with archive/tar; the fixtures were made
// with GNU tar --sparse from a 2 GiB file with one byte of data, which an
// extractor that accepted them would write out in full.
func TestSparseFilesAreRefused(t *testing.T) {
	for _, fixture := range []string{"testdata/sparse-gnu.aci", "testdata/sparse-pax.aci"} {
		t.Run(fixture, func(t *testing.T) {
			data, err := os.ReadFile(fixture)
			if err != nil {
				t.Fatal(err)
			}
			tc := badImage{entry: "rootfs/big", reason: errSparse}
			_, _, err = Validate(bytes.NewReader(data))
			checkRefusal(t, tc, err)
			dest := t.TempDir()
			checkRefusal(t, tc, Extract(bytes.NewReader(data), dest, ExtractOptions{}))
			if _, err := os.Stat(filepath.Join(dest, "rootfs", "big")); err == nil {
				t.Error("the sparse file was extracted")
			}
		})
	}
}
