package testutil

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"rkt.dev/rkt/internal/mountinfo"
)

// ParseKV parses the key=value lines that `rkt status` prints. Lines
// without "=" are ignored; a repeated key keeps its last value.
func ParseKV(out string) map[string]string {
	kv := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok {
			kv[k] = v
		}
	}
	return kv
}

// HasLine reports whether out has a line equal to line, ignoring
// surrounding white space and a "NAME: " prefix that a stage1 adds to the
// output of pods with several apps.
func HasLine(out, line string) bool {
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		if l == line || strings.HasSuffix(l, ": "+line) {
			return true
		}
	}
	return false
}

// UUIDFile returns a path, in a fresh directory, for --uuid-file-save.
func (c *Ctx) UUIDFile() string {
	return filepath.Join(c.t.TempDir(), "uuid")
}

// ReadUUID returns the pod UUID that --uuid-file-save wrote to path,
// failing the test if there is none.
func (c *Ctx) ReadUUID(path string) string {
	c.t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		c.t.Fatalf("reading the pod UUID: %v", err)
	}
	uuid := strings.TrimSpace(string(b))
	if uuid == "" {
		c.t.Fatalf("%s is empty", path)
	}
	return uuid
}

// Fetch imports an image file into the store with
// --insecure-options=image and returns the image ID rkt printed.
func (c *Ctx) Fetch(image string) string {
	c.t.Helper()
	r := c.RunOK("fetch", "--insecure-options=image", image)
	id := strings.TrimSpace(r.Stdout)
	if !strings.HasPrefix(id, "sha512-") || strings.Contains(id, "\n") {
		c.t.Fatalf("rkt fetch %s printed %q, want one image ID", image, r.Stdout)
	}
	return id
}

// Status runs `rkt status UUID` and returns its key=value lines.
func (c *Ctx) Status(uuid string) map[string]string {
	c.t.Helper()
	return ParseKV(c.RunOK("status", uuid).Stdout)
}

// WaitPID waits until `rkt status` shows the running pod's pid (a stage1
// writes it once the pod's app started, which may be after the app's
// first output) and returns it. It fails the test if the pod stops
// running first, or after Timeout.
func (c *Ctx) WaitPID(uuid string) int {
	c.t.Helper()
	deadline := time.Now().Add(c.Timeout)
	for {
		st := c.Status(uuid)
		if pid, err := strconv.Atoi(st["pid"]); err == nil && pid > 0 {
			return pid
		}
		if st["state"] != "running" {
			c.t.Fatalf("pod %s is %s without ever showing a pid", uuid, st["state"])
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("pod %s showed no pid within %v", uuid, c.Timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// PodEntries returns the pod directories under the data directory as
// "STATE-DIR/UUID" (for example "run/0f3c…"), sorted.
func (c *Ctx) PodEntries() []string {
	c.t.Helper()
	pods := filepath.Join(c.DataDir(), "pods")
	states, err := os.ReadDir(pods)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		c.t.Fatal(err)
	}
	var entries []string
	for _, st := range states {
		if !st.IsDir() {
			entries = append(entries, st.Name())
			continue
		}
		ents, err := os.ReadDir(filepath.Join(pods, st.Name()))
		if err != nil {
			c.t.Fatal(err)
		}
		for _, e := range ents {
			entries = append(entries, st.Name()+"/"+e.Name())
		}
	}
	slices.Sort(entries)
	return entries
}

// Leftovers describes what the Ctx's pods still hold on the host: pod
// directories, processes using the data directory (see ProcessesUnder),
// and mounts under it. After `rkt gc
// --grace-period=0s` it must be empty.
func (c *Ctx) Leftovers() []string {
	c.t.Helper()
	var left []string
	for _, p := range c.PodEntries() {
		left = append(left, "pod directory pods/"+p)
	}
	for _, p := range ProcessesUnder(c.DataDir()) {
		left = append(left, "process "+p)
	}
	mounts, err := MountsUnder(c.DataDir())
	if err != nil {
		c.t.Fatal(err)
	}
	for _, m := range mounts {
		left = append(left, "mount "+m)
	}
	return left
}

// ProcessesUnder describes the processes that use dir, one string each
// ("PID (COMM) REASON"): those whose root directory, working directory or
// executable lies at or below dir, whose command line names it (a VM or
// a file server started for a pod), or whose private mount namespace has
// mounts from it (an app whose root is a pod's overlay). Processes that
// exit while they are looked at are ignored.
func ProcessesUnder(dir string) []string {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return []string{"cannot read /proc: " + err.Error()}
	}
	ownNS, _ := os.Readlink("/proc/self/ns/mnt")
	under := func(p string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }
	var found []string
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		proc := func(name string) string { return fmt.Sprintf("/proc/%d/%s", pid, name) }
		reason := ""
		for _, kind := range []string{"root", "cwd", "exe"} {
			target, err := os.Readlink(proc(kind))
			if err == nil && under(strings.TrimSuffix(target, " (deleted)")) {
				reason = kind + "=" + target
				break
			}
		}
		if reason == "" {
			if b, err := os.ReadFile(proc("cmdline")); err == nil && strings.Contains(string(b), dir+"/") {
				reason = "cmdline=" + strings.Join(strings.Split(strings.TrimRight(string(b), "\x00"), "\x00"), " ")
			}
		}
		if ns, err := os.Readlink(proc("ns/mnt")); reason == "" && err == nil && ns != ownNS {
			if b, err := os.ReadFile(proc("mountinfo")); err == nil && strings.Contains(string(b), dir+"/") {
				reason = "has mounts from " + dir + " in its mount namespace"
			}
		}
		if reason != "" {
			comm, _ := os.ReadFile(proc("comm"))
			found = append(found, fmt.Sprintf("%d (%s) %s", pid, strings.TrimSpace(string(comm)), reason))
		}
	}
	return found
}

// hashLimit bounds the files ListTree hashes: large ones are image blobs
// and binaries, whose size and time suffice and whose hashing is slow.
const hashLimit = 1 << 20

// MountsUnder returns the mount points at or below dir in the calling
// process's mount namespace (the host's, for the tests).
func MountsUnder(dir string) ([]string, error) {
	mounts, err := mountinfo.Self()
	if err != nil {
		return nil, err
	}
	return mountinfo.Under(mounts, dir), nil
}

// ListTree describes every file under dir, one line each: its path
// relative to dir, type and permission bits, and for regular files the
// size, modification time and, up to hashLimit bytes, a hash of the
// content. Two listings are equal when the trees hold the same files with
// the same contents. Directory times are left out, since creating and
// deleting a temporary file changes them.
func ListTree(t testing.TB, dir string) []string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) && p == dir {
				return fs.SkipAll
			}
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		line := fmt.Sprintf("%s %s", rel, fi.Mode())
		switch {
		case fi.Mode().IsRegular():
			line += fmt.Sprintf(" %d %d", fi.Size(), fi.ModTime().UnixNano())
			if fi.Size() <= hashLimit {
				b, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				sum := sha256.Sum256(b)
				line += " " + hex.EncodeToString(sum[:8])
			}
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			line += " -> " + target
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		t.Fatalf("listing %s: %v", dir, err)
	}
	return lines
}
