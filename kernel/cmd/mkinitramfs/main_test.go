package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	dir := t.TempDir()
	initBin := filepath.Join(dir, "init")
	conf := filepath.Join(dir, "agent.conf")
	for path, mode := range map[string]os.FileMode{initBin: 0o755, conf: 0o600} {
		if err := os.WriteFile(path, []byte(filepath.Base(path)), mode); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "initrd.gz")

	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"ok", []string{"-init", initBin, "-o", out, "-add", conf + ":/etc/agent.conf"}, ""},
		{"no init", []string{"-o", out}, "usage"},
		{"no output", []string{"-init", initBin}, "usage"},
		{"stray argument", []string{"-init", initBin, "-o", out, "extra"}, "usage"},
		{"missing init", []string{"-init", filepath.Join(dir, "nope"), "-o", out}, "the -init binary"},
		{"add without dest", []string{"-init", initBin, "-o", out, "-add", conf}, "want SRC:DEST"},
		{"add missing source", []string{"-init", initBin, "-o", out, "-add", "/nonexistent:/x"}, "no such file"},
		{"add directory", []string{"-init", initBin, "-o", out, "-add", dir + ":/x"}, "not a regular file"},
		{"add relative dest", []string{"-init", initBin, "-o", out, "-add", conf + ":etc/x"}, "must be absolute"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := run(tt.args)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("run: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("run error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}

	// The successful run left a readable archive, and failed runs neither
	// replaced it nor left temporary files behind.
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	raw, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"etc/agent.conf\x00", "init\x00", "dev/console\x00", "TRAILER!!!\x00"} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("archive lacks %q", want)
		}
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, ".initrd.gz.*"))
	if len(leftovers) > 0 {
		t.Errorf("temporary files left behind: %v", leftovers)
	}
}
