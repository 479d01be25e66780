// Package tail keeps the end of a stream: the last bytes of a guest
// console, of QEMU's stderr or of virtiofsd's messages, to explain a crash
// or a failed start without holding a whole boot log in memory.
package tail

import (
	"bytes"
	"strings"
	"sync"
)

// Buffer is an io.Writer that keeps only the last bytes written. It is safe
// for concurrent use.
type Buffer struct {
	mu   sync.Mutex
	max  int
	data []byte
}

// New returns a Buffer that keeps the last max bytes.
func New(max int) *Buffer { return &Buffer{max: max} }

// Write implements io.Writer; it never fails.
func (t *Buffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.data = append(t.data, p...)
	if over := len(t.data) - t.max; over > 0 {
		t.data = append(t.data[:0], t.data[over:]...)
	}
	return len(p), nil
}

// String returns the kept bytes without surrounding blank space.
func (t *Buffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(bytes.TrimSpace(t.data))
}

// LastLineWith returns the last kept line that contains substr, trimmed,
// or "".
func (t *Buffer) LastLineWith(substr string) string {
	lines := t.linesWith(substr)
	if len(lines) == 0 {
		return ""
	}
	return lines[len(lines)-1]
}

// LinesWith returns the kept lines containing substr, trimmed, joined by
// "; ".
func (t *Buffer) LinesWith(substr string) string {
	return strings.Join(t.linesWith(substr), "; ")
}

func (t *Buffer) linesWith(substr string) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for _, l := range bytes.Split(t.data, []byte("\n")) {
		if bytes.Contains(l, []byte(substr)) {
			out = append(out, string(bytes.TrimSpace(l)))
		}
	}
	return out
}
