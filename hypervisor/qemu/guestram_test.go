package qemu

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestGuestRAMFile checks the file QEMU maps as guest RAM: on a tmpfs of
// its own with huge pages, limited to the VM's size, and reachable from
// nowhere but the descriptor.
func TestGuestRAMFile(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("creating a tmpfs needs root (CAP_SYS_ADMIN)")
	}
	f, err := guestRAMFile(16)
	if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EINVAL) {
		t.Skipf("this kernel has no new mount API or no huge pages for tmpfs: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	var st unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	if st.Type != unix.TMPFS_MAGIC {
		t.Errorf("file system type %#x, want tmpfs", st.Type)
	}
	if got := uint64(st.Blocks) * uint64(st.Bsize); got != 16<<20 {
		t.Errorf("tmpfs size %d, want %d", got, 16<<20)
	}
	// QEMU reopens it through /proc/self/fd and sizes it.
	re, err := os.OpenFile("/proc/self/fd/"+strconv.Itoa(int(f.Fd())), os.O_RDWR, 0)
	if err != nil {
		t.Fatalf("reopening through /proc/self/fd: %v", err)
	}
	defer re.Close()
	if err := re.Truncate(16 << 20); err != nil {
		t.Fatalf("sizing to the limit: %v", err)
	}
	if err := unix.Fallocate(int(re.Fd()), 0, 0, 17<<20); !errors.Is(err, unix.ENOSPC) {
		t.Errorf("allocating beyond the limit: %v, want ENOSPC", err)
	}
	// The file system is attached nowhere: no mount of it anywhere.
	link, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(f.Fd())))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(link, "/") || !strings.HasSuffix(link, "(deleted)") {
		t.Errorf("guest RAM file shows as %q, want an unlinked file", link)
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(mounts), "nr_inodes=2,") {
		t.Errorf("the guest RAM tmpfs is attached:\n%s", mounts)
	}
}
