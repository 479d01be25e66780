package testutil

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/appc/spec/schema"
)

// aciMtime stamps every entry of the images built here, so the same input
// always gives the same image ID.
var aciMtime = time.Unix(0, 0)

// FileSpec is one entry of a test image's root filesystem. The zero value
// is an empty regular file with mode 0644 owned by root.
type FileSpec struct {
	// Type is the tar type flag, such as tar.TypeDir, tar.TypeSymlink,
	// tar.TypeLink or tar.TypeChar; zero means a regular file.
	Type byte
	// Mode is the permission bits, including setuid, setgid and sticky;
	// zero means 0644, or 0755 for a directory.
	Mode int64
	// Content is the content of a regular file.
	Content string
	// Linkname is the target of a symlink or hard link.
	Linkname string
	// UID and GID own the entry.
	UID, GID int
	// Devmajor and Devminor are the numbers of a device node.
	Devmajor, Devminor int64
}

// BuildACI writes an image with manifest (used verbatim, so it may be
// invalid on purpose) and files, keyed by their path inside rootfs/ (for
// example "bin/app"), and returns its path in a fresh t.TempDir. Keys are
// appended to "rootfs/" verbatim, so "../../escape" stays an escaping name
// for tests of malicious images; missing parent directories are added
// only for local paths.
func BuildACI(t testing.TB, manifest string, files map[string]FileSpec) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "test.aci")
	if err := writeACI(out, manifest, files); err != nil {
		t.Fatal(err)
	}
	return out
}

func writeACI(out, manifest string, files map[string]FileSpec) error {
	entries := map[string]FileSpec{".": {Type: tar.TypeDir}}
	for name := range files {
		if !filepath.IsLocal(name) {
			continue
		}
		for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
			entries[dir] = FileSpec{Type: tar.TypeDir}
		}
	}
	for name, f := range files {
		entries[name] = f
	}
	return createACI(out, func(tw *tar.Writer) error {
		if err := writeEntry(tw, "manifest", FileSpec{Content: manifest}); err != nil {
			return err
		}
		// Sorted, so parents precede children and output is reproducible.
		for _, name := range slices.Sorted(maps.Keys(entries)) {
			if err := writeEntry(tw, rootfsName(name), entries[name]); err != nil {
				return err
			}
		}
		return nil
	})
}

// rootfsName is the archive name of rootfs entry name. It is not cleaned,
// so ".." components stay in the archive, as malicious-image tests need.
func rootfsName(name string) string {
	if name == "." {
		return "rootfs"
	}
	return "rootfs/" + name
}

// writeEntry writes one tar entry.
func writeEntry(tw *tar.Writer, name string, f FileSpec) error {
	hdr := &tar.Header{
		Name:     name,
		Typeflag: f.Type,
		Mode:     f.Mode,
		Linkname: f.Linkname,
		Uid:      f.UID,
		Gid:      f.GID,
		Devmajor: f.Devmajor,
		Devminor: f.Devminor,
		ModTime:  aciMtime,
	}
	switch {
	case hdr.Typeflag == 0:
		hdr.Typeflag = tar.TypeReg
	case hdr.Typeflag == tar.TypeDir && hdr.Name[len(hdr.Name)-1] != '/':
		hdr.Name += "/"
	}
	if hdr.Typeflag == tar.TypeReg {
		hdr.Size = int64(len(f.Content))
	}
	if hdr.Mode == 0 {
		hdr.Mode = 0o644
		if hdr.Typeflag == tar.TypeDir {
			hdr.Mode = 0o755
		}
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	if _, err := io.WriteString(tw, f.Content); err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	return nil
}

// PatchACI copies the image at base, changing its manifest with patch, and
// returns the new image's path in a fresh t.TempDir. It is how tests get
// variants of the example images: another exec, user, isolator or port,
// while keeping the inspector binary.
func PatchACI(t testing.TB, base string, patch func(*schema.ImageManifest)) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "patched.aci")
	if err := patchACI(base, out, patch); err != nil {
		t.Fatal(err)
	}
	return out
}

func patchACI(base, out string, patch func(*schema.ImageManifest)) error {
	in, err := os.Open(base)
	if err != nil {
		return err
	}
	defer in.Close()
	r, err := decompress(in)
	if err != nil {
		return fmt.Errorf("reading %s: %w", base, err)
	}
	tr := tar.NewReader(r)
	return createACI(out, func(tw *tar.Writer) error {
		for {
			hdr, err := tr.Next()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return fmt.Errorf("reading %s: %w", base, err)
			}
			if hdr.Name != "manifest" {
				if err := tw.WriteHeader(hdr); err != nil {
					return fmt.Errorf("copying %s: %w", hdr.Name, err)
				}
				if _, err := io.Copy(tw, tr); err != nil {
					return fmt.Errorf("copying %s: %w", hdr.Name, err)
				}
				continue
			}
			var m schema.ImageManifest
			b, err := io.ReadAll(tr)
			if err == nil {
				err = m.UnmarshalJSON(b)
			}
			if err != nil {
				return fmt.Errorf("reading the manifest of %s: %w", base, err)
			}
			patch(&m)
			if b, err = m.MarshalJSON(); err != nil {
				return fmt.Errorf("patched manifest: %w", err)
			}
			hdr.Size = int64(len(b))
			if err := tw.WriteHeader(hdr); err != nil {
				return fmt.Errorf("writing the manifest: %w", err)
			}
			if _, err := tw.Write(b); err != nil {
				return fmt.Errorf("writing the manifest: %w", err)
			}
		}
	})
}

// decompress accepts a gzip-compressed or a plain tar, as ACIs may be
// either.
func decompress(r io.Reader) (io.Reader, error) {
	br := bufio.NewReader(r)
	magic, err := br.Peek(2)
	if err != nil {
		return nil, err
	}
	if bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		return gzip.NewReader(br)
	}
	return br, nil
}

// createACI writes a gzip-compressed tar to out with fill.
func createACI(out string, fill func(*tar.Writer) error) error {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	// BestSpeed: test images are thrown away, and the inspector is large.
	gz, err := gzip.NewWriterLevel(f, gzip.BestSpeed)
	if err != nil {
		f.Close()
		return err
	}
	tw := tar.NewWriter(gz)
	err = fill(tw)
	for _, closer := range []io.Closer{tw, gz, f} {
		if cerr := closer.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("writing %s: %w", out, cerr)
		}
	}
	return err
}

// TarEntry is one entry of an archive built by BuildRawACI.
type TarEntry struct {
	// Name is the entry's name in the archive, used verbatim: it is not
	// put under rootfs/, cleaned or completed with parent directories.
	Name string
	FileSpec
}

// BuildRawACI writes exactly entries, in order, as a gzip-compressed tar
// and returns its path in a fresh t.TempDir. It is for images that
// BuildACI cannot express: duplicate entries, a missing manifest, entries
// outside rootfs/, hard links to arbitrary names.
func BuildRawACI(t testing.TB, entries []TarEntry) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "raw.aci")
	err := createACI(out, func(tw *tar.Writer) error {
		for _, e := range entries {
			if err := writeEntry(tw, e.Name, e.FileSpec); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
