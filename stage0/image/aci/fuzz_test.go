package aci

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"rkt.dev/rkt/stage0/image/internal/acitest"
)

// FuzzExtract feeds arbitrary archives to Extract. It must never panic,
// never write outside its target, and never accept what Validate refuses.
// The seed corpus in testdata/fuzz/FuzzExtract holds one archive per
// malicious case of badImages plus valid images.
func FuzzExtract(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		top := t.TempDir()
		dest := filepath.Join(top, "dest")
		outside := filepath.Join(top, "outside")
		for _, d := range []string{dest, outside} {
			if err := os.Mkdir(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		extractErr := Extract(bytes.NewReader(data), dest, ExtractOptions{})
		_, _, validateErr := Validate(bytes.NewReader(data))
		if validateErr != nil && extractErr == nil {
			t.Fatalf("Extract accepted an archive Validate refuses: %v", validateErr)
		}
		acitest.AssertEntries(t, top, "dest", "outside")
		acitest.AssertEntries(t, outside)
	})
}

// FuzzManifest feeds arbitrary bytes to ParseManifest. It must never
// panic, and whatever it accepts must survive a round trip through JSON,
// because the store prints manifests it parsed (rkt image cat-manifest).
func FuzzManifest(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		im, err := ParseManifest(data)
		if err != nil {
			return
		}
		out, err := json.Marshal(im)
		if err != nil {
			t.Fatalf("accepted manifest does not marshal: %v", err)
		}
		if _, err := ParseManifest(out); err != nil {
			t.Fatalf("accepted manifest does not parse after a round trip: %v\n%s", err, out)
		}
	})
}
