package qemu

import (
	"bytes"
	"sync"
)

// tail is an io.Writer that keeps only the last bytes written: the end of
// the guest console or of QEMU's stderr, to explain a crash or a failed
// start without holding a whole boot log in memory.
type tail struct {
	mu   sync.Mutex
	max  int
	data []byte
}

// newTail returns a tail that keeps the last max bytes.
func newTail(max int) *tail {
	return &tail{max: max}
}

// Write implements io.Writer; it never fails.
func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.data = append(t.data, p...)
	if over := len(t.data) - t.max; over > 0 {
		t.data = append(t.data[:0], t.data[over:]...)
	}
	return len(p), nil
}

// String returns the kept bytes without surrounding blank space.
func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(bytes.TrimSpace(t.data))
}

// lineWith returns the last kept line that contains substr, trimmed, or "".
func (t *tail) lineWith(substr string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := bytes.Split(t.data, []byte("\n"))
	for i := len(lines) - 1; i >= 0; i-- {
		if bytes.Contains(lines[i], []byte(substr)) {
			return string(bytes.TrimSpace(lines[i]))
		}
	}
	return ""
}
