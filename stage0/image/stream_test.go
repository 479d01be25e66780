package image

import (
	"bytes"
	"crypto/sha512"
	"os"
	"path/filepath"
	"testing"
)

func TestBackgroundHash(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 300_000) // 4.8 MB
	for _, write := range []int{1, 511, 4096, hashChunk, 3 * hashChunk / 2, len(data)} {
		h := newBackgroundHash(sha512.New())
		for rest := data; len(rest) > 0; {
			n := min(write, len(rest))
			if _, err := h.Write(rest[:n]); err != nil {
				t.Fatalf("writes of %d: %v", write, err)
			}
			rest = rest[n:]
		}
		want := sha512.Sum512(data)
		if got := h.Hash().Sum(nil); !bytes.Equal(got, want[:]) {
			t.Errorf("writes of %d: hash %x, want %x", write, got, want)
		}
	}
}

func TestBackgroundHashAbort(t *testing.T) {
	h := newBackgroundHash(sha512.New())
	h.Write(make([]byte, 3*hashChunk))
	h.Abort() // must return: the hashing goroutine ends
}

func TestWritebackFileWritesEverything(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte{7}, 2*writebackChunk+123)
	w := &writebackFile{f: f}
	for rest := data; len(rest) > 0; {
		n := min(1<<20, len(rest))
		if _, err := w.Write(rest[:n]); err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) || w.off != int64(len(data)) || w.writebackFrom != 2*writebackChunk {
		t.Errorf("read back %d bytes, offset %d, writeback from %d; want %d, %d, %d",
			len(got), w.off, w.writebackFrom, len(data), len(data), 2*writebackChunk)
	}
}
