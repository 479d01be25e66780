package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoticeWriter: the notice is seen whatever chunks the console arrives
// in, and only once it is whole.
func TestNoticeWriter(t *testing.T) {
	const notice = "rkt-agent: serving"
	tests := []struct {
		name   string
		chunks []string
		seen   bool
	}{
		{"one write", []string{"boot\nrkt-agent: serving the API\n"}, true},
		{"split across writes", []string{"rkt-ag", "ent: ser", "ving"}, true},
		{"byte by byte", strings.Split("xx rkt-agent: serving", ""), true},
		{"incomplete", []string{"rkt-agent: serv"}, false},
		{"other lines only", []string{"rkt-agent: error: no channel\n", "rkt-agent: servin\n"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &noticeWriter{notice: []byte(notice), seen: make(chan struct{})}
			for _, c := range tt.chunks {
				if n, err := w.Write([]byte(c)); n != len(c) || err != nil {
					t.Fatalf("Write(%q) = %d, %v", c, n, err)
				}
			}
			select {
			case <-w.seen:
				if !tt.seen {
					t.Error("notice reported, but it was never written whole")
				}
			default:
				if tt.seen {
					t.Error("notice written but not reported")
				}
			}
		})
	}
}

// TestTemplateKey: every part of a machine shape changes the key, and the
// same shape gives the same key.
func TestTemplateKey(t *testing.T) {
	dir := t.TempDir()
	idFile := func(id string) string {
		p := filepath.Join(dir, id)
		if err := os.WriteFile(p, []byte(id+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	base := vmSize{MemoryMiB: 256, VCPUs: 1}
	key := func(t *testing.T, id, bin string, size vmSize, disks int) string {
		t.Helper()
		k, err := templateKey(idFile(id), bin, size, disks)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	want := key(t, "deps-sha512-a", "/bin/true", base, 1)
	if again := key(t, "deps-sha512-a", "/bin/true", base, 1); again != want {
		t.Errorf("same shape, keys %s and %s", want, again)
	}
	tests := []struct {
		name  string
		id    string
		bin   string
		size  vmSize
		disks int
	}{
		{"stage1", "deps-sha512-b", "/bin/true", base, 1},
		{"QEMU binary", "deps-sha512-a", "/bin/false", base, 1},
		{"memory", "deps-sha512-a", "/bin/true", vmSize{MemoryMiB: 512, VCPUs: 1}, 1},
		{"vCPUs", "deps-sha512-a", "/bin/true", vmSize{MemoryMiB: 256, VCPUs: 2}, 1},
		{"disks", "deps-sha512-a", "/bin/true", base, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if k := key(t, tt.id, tt.bin, tt.size, tt.disks); k == want {
				t.Errorf("another %s gives the same key %s", tt.name, k)
			}
		})
	}
	if _, err := templateKey(filepath.Join(dir, "missing"), "/bin/true", base, 1); err == nil {
		t.Error("no error for a missing stage1 tree ID")
	}
}
