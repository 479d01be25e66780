package image

import (
	"bytes"
	"errors"
	"testing"

	"rkt.dev/rkt/stage0/image/aci"
)

// FuzzImport feeds arbitrary input to Import. It must never panic; a
// refused input must leave the store exactly as it was and be reported as
// a corrupt image; an accepted one must export to bytes that hash to its
// ID. The seed corpus in testdata/fuzz/FuzzImport holds each malicious case
// of TestImportRefusesBadImages and valid images in every compression.
func FuzzImport(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		s, _ := newStore(t)
		before := snapshot(t, s)
		id, err := s.Import(bytes.NewReader(data))
		if err != nil {
			if !errors.As(err, new(*aci.InvalidError)) {
				t.Fatalf("refused with %v, want an *aci.InvalidError", err)
			}
			assertSnapshot(t, s, before)
			return
		}
		var out bytes.Buffer
		if err := s.Export(id, &out); err != nil {
			t.Fatal(err)
		}
		if idOf(out.Bytes()) != id {
			t.Fatalf("exported image does not hash to %s", id)
		}
	})
}
