package remote

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestIndex(t *testing.T) {
	dir := t.TempDir()
	x, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := x.Get("https://example.com/a.aci"); ok {
		t.Fatal("empty index has a record")
	}
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	r := Record{Key: "https://example.com/a.aci", ImageID: "sha512-1234", ETag: `"v1"`, MaxAge: 60, Downloaded: now}
	if err := x.Put(r); err != nil {
		t.Fatal(err)
	}
	got, ok := x.Get(r.Key)
	if !ok || got != r {
		t.Fatalf("Get = %+v, %v; want %+v", got, ok, r)
	}
	r.ETag = `"v2"`
	if err := x.Put(r); err != nil {
		t.Fatal(err)
	}
	if got, _ := x.Get(r.Key); got.ETag != `"v2"` {
		t.Errorf("Put did not replace the record: %+v", got)
	}
	// No temporary files are left behind.
	des, _ := os.ReadDir(filepath.Join(dir, "cas", "remote"))
	if len(des) != 1 {
		t.Errorf("%d files in the index, want 1", len(des))
	}
	// A damaged record is no record.
	if err := os.WriteFile(x.path(r.Key), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, ok := x.Get(r.Key); ok {
		t.Error("damaged record was returned")
	}
	if err := x.Put(Record{}); err == nil {
		t.Error("Put accepted a record without a key")
	}
}

func TestFresh(t *testing.T) {
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		maxAge int
		after  time.Duration
		want   bool
	}{
		{0, 0, false},
		{60, 59 * time.Second, true},
		{60, 60 * time.Second, false},
	}
	for _, tc := range tests {
		r := Record{MaxAge: tc.maxAge, Downloaded: at}
		if got := r.Fresh(at.Add(tc.after)); got != tc.want {
			t.Errorf("max-age %d after %v: Fresh = %v, want %v", tc.maxAge, tc.after, got, tc.want)
		}
	}
}
