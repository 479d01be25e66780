package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/appc/spec/schema"

	"rkt.dev/rkt/tests/testutil"
)

const flyStage1Name = "rkt.dev/rkt/stage1-fly"

// writeConfig writes a configuration file of kind ("paths", "stage1") into
// a configuration directory.
func writeConfig(t *testing.T, dir, kind, content string) {
	t.Helper()
	d := filepath.Join(dir, kind+".d")
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, "test.json"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// podStage1 returns the name and version of the stage1 a pod ran with,
// from its pod directory (pods/run/UUID/stage1/manifest).
func podStage1(t *testing.T, c *testutil.Ctx, uuid string) (string, string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(c.DataDir(), "pods", "run", uuid, "stage1", "manifest"))
	if err != nil {
		t.Fatal(err)
	}
	var m schema.ImageManifest
	if err := m.UnmarshalJSON(b); err != nil {
		t.Fatal(err)
	}
	v, _ := m.GetLabel("version")
	return m.Name.String(), v
}

// TestStage1Selection runs a pod with the stage1 chosen each way rkt
// offers. Every way but --stage1-name gets a copy of the fly stage1 with
// its own version, so the test sees which image was used.
func TestStage1Selection(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// setup prepares the Ctx and returns the stage1 flags.
		setup       func(t *testing.T, c *testutil.Ctx, variant string) []string
		wantVersion string // "" accepts the built fly stage1's version
	}{
		{"--stage1-name=fly", func(t *testing.T, c *testutil.Ctx, _ string) []string {
			return []string{"--stage1-name=fly"}
		}, ""},
		{"--stage1-name=full name", func(t *testing.T, c *testutil.Ctx, _ string) []string {
			return []string{"--stage1-name=" + flyStage1Name}
		}, ""},
		{"--stage1-path", func(t *testing.T, c *testutil.Ctx, variant string) []string {
			return []string{"--stage1-path=" + variant}
		}, "path-test"},
		{"--stage1-url", func(t *testing.T, c *testutil.Ctx, variant string) []string {
			return []string{"--stage1-url=file://" + variant}
		}, "url-test"},
		{"--stage1-hash", func(t *testing.T, c *testutil.Ctx, variant string) []string {
			return []string{"--stage1-hash=" + c.Fetch(variant)}
		}, "hash-test"},
		{"--stage1-name=name:version in the store", func(t *testing.T, c *testutil.Ctx, variant string) []string {
			c.Fetch(variant)
			return []string{"--stage1-name=" + flyStage1Name + ":name-test"}
		}, "name-test"},
		{"--stage1-from-dir", func(t *testing.T, c *testutil.Ctx, variant string) []string {
			dir := t.TempDir()
			if err := os.Link(variant, filepath.Join(dir, "custom-stage1.aci")); err != nil {
				t.Fatal(err)
			}
			writeConfig(t, c.LocalConfigDir(), "paths", `{"rktKind":"paths","rktVersion":"v1","stage1-images":"`+dir+`"}`)
			return []string{"--stage1-from-dir=custom-stage1.aci"}
		}, "fromdir-test"},
		{"default from stage1.d", func(t *testing.T, c *testutil.Ctx, variant string) []string {
			writeConfig(t, c.LocalConfigDir(), "stage1", `{"rktKind":"stage1","rktVersion":"v1","name":"`+flyStage1Name+
				`","version":"config-test","location":"`+variant+`"}`)
			return nil
		}, "config-test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := flyCtx(t)
			variant := c.Stage1("fly")
			if tt.wantVersion != "" {
				variant = patchVersion(t, variant, tt.wantVersion)
			}
			flags := tt.setup(t, c, variant)
			f := c.UUIDFile()
			args := append(append([]string{"run", "--insecure-options=image", "--uuid-file-save=" + f}, flags...),
				c.Image("inspector"), "--", "--print-msg=stage1-ok")
			r := c.Run(args...)
			if r.ExitCode != 0 || !testutil.HasLine(r.Stdout, "stage1-ok") {
				t.Fatalf("rkt %q: %v", args, r)
			}
			name, version := podStage1(t, c, c.ReadUUID(f))
			if name != flyStage1Name || (tt.wantVersion != "" && version != tt.wantVersion) {
				t.Errorf("the pod ran with stage1 %s:%s, want %s:%s", name, version, flyStage1Name, tt.wantVersion)
			}
		})
	}
}

// TestStage1Missing: every way of naming a stage1 that does not exist,
// or is not a stage1, fails with exit code 254 and one clear line.
func TestStage1Missing(t *testing.T) {
	t.Parallel()
	missing := "/nonexistent/stage1.aci"
	tests := []struct {
		name  string
		setup func(t *testing.T, c *testutil.Ctx) []string
		want  string
	}{
		{"--stage1-path", func(*testing.T, *testutil.Ctx) []string { return []string{"--stage1-path=" + missing} }, missing},
		{"--stage1-url", func(*testing.T, *testutil.Ctx) []string { return []string{"--stage1-url=file://" + missing} }, missing},
		{"--stage1-name", func(*testing.T, *testutil.Ctx) []string { return []string{"--stage1-name=example.com/nosuch"} }, "example.com/nosuch"},
		{"--stage1-hash", func(*testing.T, *testutil.Ctx) []string { return []string{"--stage1-hash=sha512-0123456789abcdef"} }, "sha512-0123456789abcdef"},
		{"--stage1-from-dir", func(*testing.T, *testutil.Ctx) []string { return []string{"--stage1-from-dir=nosuch.aci"} }, "nosuch.aci"},
		{"stage1.d location", func(t *testing.T, c *testutil.Ctx) []string {
			writeConfig(t, c.LocalConfigDir(), "stage1", `{"rktKind":"stage1","rktVersion":"v1","name":"example.com/nosuch","version":"1","location":"`+missing+`"}`)
			return nil
		}, missing},
		{"not a stage1", func(t *testing.T, c *testutil.Ctx) []string { return []string{"--stage1-path=" + c.Image("busybox")} }, "not a stage1"},
		{"two choices", func(t *testing.T, c *testutil.Ctx) []string {
			return []string{"--stage1-name=fly", "--stage1-path=" + c.Stage1("fly")}
		}, "only one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testutil.New(t)
			args := append(append([]string{"run", "--insecure-options=image"}, tt.setup(t, c)...), c.Image("inspector"))
			r := c.Run(args...)
			checkRktError(t, r, tt.want)
			if !strings.Contains(r.Stderr, "stage1") {
				t.Errorf("the error should say it is about the stage1: %q", r.Stderr)
			}
			if pods := c.PodEntries(); len(pods) != 0 {
				t.Errorf("a failed run left pods: %q", pods)
			}
		})
	}
}
