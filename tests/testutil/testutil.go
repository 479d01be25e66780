// Package testutil is the harness of rkt's functional tests: black-box
// tests in package tests that drive the built rkt binary against the example
// images, as a user would.
//
// Every test gets its own Ctx (New): a private data directory and
// configuration directories, so tests never see each other's pods, images
// or configuration and never touch the host's /var/lib/rkt. Commands run
// with a timeout and in their own process group, so a hung rkt, stage1 or
// VM is killed instead of hanging the suite, and whatever a test leaves
// behind (running pods, mounts) is stopped, unmounted and removed when it
// ends.
//
// The build outputs the tests need come from `make`:
//
//	RKT_BINARY      the rkt binary (default <repo>/build/bin/rkt)
//	RKT_IMAGES_DIR  the example images (default <repo>/build/images)
//	                stage1 images are <repo>/build/stage1-<flavor>.aci
//
// Missing outputs skip the test, so `go test ./...` stays usable before a
// full build; RKT_REQUIRE_BUILD=1 turns that into a failure so that CI
// cannot pass by skipping everything.
package testutil

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// repoRoot is the directory holding go.mod, found by walking up from the
// working directory (go test runs each package in its own directory).
var repoRoot = sync.OnceValues(func() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding the repository: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("finding the repository: %w", err)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("finding the repository: no go.mod above the working directory")
		}
		dir = parent
	}
})

// repoPath returns rel under the repository root.
func repoPath(t testing.TB, rel string) string {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, rel)
}

// buildPath returns env's value, or rel under the repository root.
func buildPath(t testing.TB, env, rel string) string {
	t.Helper()
	if v := os.Getenv(env); v != "" {
		return v
	}
	return repoPath(t, rel)
}

// binaryPath is the rkt binary under test.
func binaryPath(t testing.TB) string { return buildPath(t, "RKT_BINARY", "build/bin/rkt") }

// imagePath is the example image name, e.g. "inspector".
func imagePath(t testing.TB, name string) string {
	return filepath.Join(buildPath(t, "RKT_IMAGES_DIR", "build/images"), name+".aci")
}

// requireBuilt skips (or, with RKT_REQUIRE_BUILD=1, fails) the test when a
// build output is missing.
func requireBuilt(t testing.TB, path string) {
	t.Helper()
	_, err := os.Stat(path)
	if err == nil {
		return
	}
	msg := fmt.Sprintf("build output %s is missing (%v): run `make` first", path, err)
	if os.Getenv("RKT_REQUIRE_BUILD") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg + "; set RKT_REQUIRE_BUILD=1 to fail instead of skipping")
}

// RequireRoot skips the test unless it runs as root, which running pods
// (mounts, namespaces, cgroups) needs.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("needs root (running as uid %d)", os.Geteuid())
	}
}

// RequireBinaries skips or fails the test (see the package documentation)
// unless the rkt binary and the example images are built.
func RequireBinaries(t testing.TB) {
	t.Helper()
	requireBuilt(t, binaryPath(t))
	for _, name := range []string{"busybox", "inspector"} {
		requireBuilt(t, imagePath(t, name))
	}
}
