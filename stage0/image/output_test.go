package image

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	at "rkt.dev/rkt/stage0/image/internal/acitest"
)

func TestExportRoundTrip(t *testing.T) {
	s, _ := newStore(t)
	data := at.Build(t, at.Image(t, "example.com/app", at.File("rootfs/a", "a"))...)
	id, err := s.Import(bytes.NewReader(gzipped(t, data)))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := s.Export(id, &buf); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), data) {
		t.Error("Export did not write the uncompressed image")
	}
}

func TestDamagedBlobIsReported(t *testing.T) {
	s, _, _, app, _ := storeWithChain(t)
	b := []byte(readFile(t, s.blobPath(app)))
	// Change the contents of rootfs/app, in the block after its header:
	// the archive still reads fine, only the hash tells.
	hdr := bytes.Index(b, []byte("rootfs/app")) / 512 * 512
	b[hdr+512] ^= 1
	if err := os.WriteFile(s.blobPath(app), b, 0o644); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	assertErrorContains(t, s.Export(app, &buf), "is damaged")
	assertErrorContains(t, s.RenderTo(app, filepath.Join(t.TempDir(), "out"), OutputOptions{}), "is damaged")
}

func TestExtractAndRenderTo(t *testing.T) {
	s, _, _, app, _ := storeWithChain(t)
	type write func(id, dest string, opts OutputOptions) error
	for _, tc := range []struct {
		name string
		fn   write
		opts OutputOptions
		want []string
	}{
		{"extract", s.Extract, OutputOptions{}, []string{"manifest", "rootfs"}},
		{"extract rootfs only", s.Extract, OutputOptions{RootfsOnly: true}, []string{"app"}},
		{"render", s.RenderTo, OutputOptions{}, []string{"manifest", "rootfs"}},
		{"render rootfs only", s.RenderTo, OutputOptions{RootfsOnly: true}, []string{"app", "base"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			dest := filepath.Join(parent, "out")
			if err := tc.fn(app, dest, tc.opts); err != nil {
				t.Fatal(err)
			}
			at.AssertEntries(t, dest, tc.want...)

			// A non-empty destination needs Overwrite and is then
			// replaced, not merged.
			if err := os.WriteFile(filepath.Join(dest, "stale"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			assertErrorContains(t, tc.fn(app, dest, tc.opts), dest, "exists and is not empty", "--overwrite")
			at.AssertEntries(t, dest, append(tc.want, "stale")...)
			tc.opts.Overwrite = true
			if err := tc.fn(app, dest, tc.opts); err != nil {
				t.Fatal(err)
			}
			at.AssertEntries(t, dest, tc.want...)
			at.AssertEntries(t, parent, "out")
		})
	}
}
