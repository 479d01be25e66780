package supervisor

import (
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestCopyUp(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("copying owners needs root")
	}
	root := t.TempDir()
	data := filepath.Join(root, "data")
	must(t, os.MkdirAll(filepath.Join(data, "sub"), 0o750))
	must(t, os.WriteFile(filepath.Join(data, "f"), []byte("file"), 0o640))
	must(t, os.Chown(filepath.Join(data, "f"), 1000, 1001))
	must(t, os.WriteFile(filepath.Join(data, "sub", "g"), []byte("nested"), 0o600))
	must(t, unix.Chmod(filepath.Join(data, "sub"), 0o2750)) // setgid survives the chown
	must(t, os.Symlink("/etc/passwd", filepath.Join(data, "abs")))
	must(t, os.Symlink("../..", filepath.Join(data, "up")))
	must(t, unix.Mkfifo(filepath.Join(data, "fifo"), 0o644))
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	must(t, os.Chtimes(filepath.Join(data, "f"), old, old))
	must(t, unix.Chmod(data, 0o1777))
	must(t, os.Chown(data, 7, 8))
	// A symlink in the image pointing at the host's /etc resolves inside
	// the root, where there is no etc.
	must(t, os.Symlink("/etc", filepath.Join(root, "hostetc")))

	rootFD, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY, 0)
	must(t, err)
	defer unix.Close(rootFD)

	cases := []struct {
		name, target string
		prefill      bool
		want         []string // entries of the volume afterwards
	}{
		{"image content", "/data", false, []string{"abs", "f", "sub", "up"}},
		{"a volume already filled is left alone", "/data", true, []string{"mine"}},
		{"nothing at the target", "/missing", false, nil},
		{"a symlink to the host stays in the root", "/hostetc", false, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			vol := t.TempDir()
			if tc.prefill {
				must(t, os.WriteFile(filepath.Join(vol, "mine"), nil, 0o644))
			}
			must(t, copyUp(rootFD, tc.target, vol))
			ents, err := os.ReadDir(vol)
			must(t, err)
			var got []string
			for _, e := range ents {
				got = append(got, e.Name())
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("volume holds %v, want %v", got, tc.want)
			}
		})
	}

	vol := t.TempDir()
	must(t, copyUp(rootFD, "data", vol))
	check := func(rel string, mode os.FileMode, uid, gid uint32) {
		t.Helper()
		fi, err := os.Lstat(filepath.Join(vol, rel))
		must(t, err)
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode() != mode || st.Uid != uid || st.Gid != gid {
			t.Errorf("%s: mode %v owner %d:%d, want %v %d:%d", rel, fi.Mode(), st.Uid, st.Gid, mode, uid, gid)
		}
	}
	check(".", os.ModeDir|os.ModeSticky|0o777, 7, 8)
	check("f", 0o640, 1000, 1001)
	check("sub", os.ModeDir|os.ModeSetgid|0o750, 0, 0)
	check("sub/g", 0o600, 0, 0)
	for link, want := range map[string]string{"abs": "/etc/passwd", "up": "../.."} {
		if got, err := os.Readlink(filepath.Join(vol, link)); err != nil || got != want {
			t.Errorf("symlink %s = %q, %v; want %q", link, got, err, want)
		}
	}
	if b, err := os.ReadFile(filepath.Join(vol, "sub", "g")); err != nil || string(b) != "nested" {
		t.Errorf("sub/g = %q, %v", b, err)
	}
	if fi, err := os.Stat(filepath.Join(vol, "f")); err != nil || !fi.ModTime().Equal(old) {
		t.Errorf("f's modification time was not kept: %v, %v", fi, err)
	}
}
