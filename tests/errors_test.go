package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"rkt.dev/rkt/tests/testutil"
)

// checkRktError fails the test unless r is a failure of rkt itself: exit
// code 254 and exactly one line on stderr, starting with "rkt: " and
// containing want, and no Go panic.
func checkRktError(t *testing.T, r testutil.Result, want string) {
	t.Helper()
	if r.ExitCode != 254 {
		t.Errorf("exit code %d, want 254: %v", r.ExitCode, r)
	}
	if strings.Contains(r.Stderr, "panic:") || strings.Contains(r.Stderr, "goroutine ") {
		t.Fatalf("rkt panicked: %v", r)
	}
	lines := strings.Split(strings.TrimRight(r.Stderr, "\n"), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "rkt: ") {
		t.Errorf("want exactly one stderr line starting with \"rkt: \", got %q", r.Stderr)
	}
	if !strings.Contains(r.Stderr, want) {
		t.Errorf("the error should mention %q: %q", want, r.Stderr)
	}
}

// TestErrors: each way a command can fail exits 254 with one line saying
// what failed.
func TestErrors(t *testing.T) {
	t.Parallel()
	c := testutil.New(t)
	corrupt := filepath.Join(t.TempDir(), "corrupt.aci")
	if err := os.WriteFile(corrupt, []byte("this is not a tar archive"), 0o644); err != nil {
		t.Fatal(err)
	}
	inspector := c.Image("inspector")
	const noPod = "0badc0de-0000-4000-8000-000000000000"
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown image", []string{"run", "--stage1-name=fly", "no-such-image"}, "no-such-image"},
		{"unknown image fetch", []string{"fetch", "--pull-policy=never", "example.com/no-such-image"}, "example.com/no-such-image"},
		{"unknown image file", []string{"run", "--insecure-options=image", "--stage1-name=fly", "/nonexistent/app.aci"}, "/nonexistent/app.aci"},
		{"bad flag", []string{"run", "--no-such-flag", inspector}, "--no-such-flag"},
		{"bad global flag", []string{"--no-such-flag", "list"}, "--no-such-flag"},
		{"bad flag value", []string{"gc", "--grace-period=soon"}, "soon"},
		{"unknown insecure option", []string{"--insecure-options=everything", "list"}, "everything"},
		{"bad volume", []string{"run", "--volume=data,kind=nfs", inspector}, "data,kind=nfs"},
		{"bad app flag", []string{"run", "--insecure-options=image", "--stage1-name=fly", inspector, "--no-such-app-flag"}, "--no-such-app-flag"},
		{"unsigned image", []string{"fetch", inspector}, "--insecure-options=image"},
		{"corrupt ACI", []string{"fetch", "--insecure-options=image", corrupt}, corrupt},
		{"corrupt ACI run", []string{"run", "--insecure-options=image", "--stage1-name=fly", corrupt}, corrupt},
		{"missing stage1", []string{"run", "--insecure-options=image", "--stage1-path=/nonexistent/stage1.aci", inspector}, "/nonexistent/stage1.aci"},
		{"pod not found: status", []string{"status", noPod}, noPod},
		{"pod not found: stop", []string{"stop", noPod}, noPod},
		{"pod not found: rm", []string{"rm", noPod}, noPod},
		{"pod not found: enter", []string{"enter", noPod, "/bin/true"}, noPod},
		{"pod not found: cat-manifest", []string{"cat-manifest", noPod}, noPod},
		{"pod not found: run-prepared", []string{"run-prepared", noPod}, noPod},
		{"no pod given", []string{"status"}, "UUID"},
		{"image not found: rm", []string{"image", "rm", "example.com/no-such-image"}, "example.com/no-such-image"},
		{"image not found: cat-manifest", []string{"image", "cat-manifest", "example.com/no-such-image"}, "example.com/no-such-image"},
		{"image not found: export", []string{"image", "export", "example.com/no-such-image", filepath.Join(t.TempDir(), "x.aci")}, "example.com/no-such-image"},
		{"unknown list format", []string{"list", "--format=yaml"}, "yaml"},
		{"unknown command", []string{"frobnicate"}, "frobnicate"},
		{"unknown image subcommand", []string{"image", "frobnicate"}, "frobnicate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := c.For(t)
			checkRktError(t, c.Run(tt.args...), tt.want)
		})
	}
	if pods := c.PodEntries(); len(pods) != 0 {
		t.Errorf("failed commands left pods: %q", pods)
	}
}
