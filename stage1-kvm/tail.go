package main

import (
	"bytes"
	"strings"
	"sync"
)

// tail is an io.Writer that keeps the last bytes written: the end of the
// guest console and of virtiofsd's messages, to explain a failure without
// keeping whole logs.
type tail struct {
	mu   sync.Mutex
	max  int
	data []byte
}

func newTail(max int) *tail { return &tail{max: max} }

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

// linesWith returns the kept lines containing substr, trimmed, joined by
// "; ".
func (t *tail) linesWith(substr string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for _, l := range bytes.Split(t.data, []byte("\n")) {
		if bytes.Contains(l, []byte(substr)) {
			out = append(out, string(bytes.TrimSpace(l)))
		}
	}
	return strings.Join(out, "; ")
}

// String returns the kept bytes, trimmed.
func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(bytes.TrimSpace(t.data))
}
