package vmtest

import (
	"bytes"
	"sync"
	"testing"
	"time"
)

// Console collects a guest's serial console, to show in failure reports,
// and lets a test wait for a line on it. Make one with NewConsole.
type Console struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // closed and replaced at every write
}

// NewConsole returns an empty Console.
func NewConsole() *Console { return &Console{changed: make(chan struct{})} }

// Write implements io.Writer.
func (c *Console) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf.Write(p)
	close(c.changed)
	c.changed = make(chan struct{})
	return len(p), nil
}

// String returns everything written so far.
func (c *Console) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

// WaitFor waits until the console shows s and returns when it did. It
// fails the test if exited (nil for none) is closed first, or after limit.
func (c *Console) WaitFor(t testing.TB, s string, exited <-chan struct{}, limit time.Duration) time.Time {
	t.Helper()
	deadline := time.After(limit)
	for {
		c.mu.Lock()
		found, changed := bytes.Contains(c.buf.Bytes(), []byte(s)), c.changed
		c.mu.Unlock()
		if found {
			return time.Now()
		}
		select {
		case <-changed:
		case <-exited:
			t.Fatalf("QEMU exited before %q appeared; console:\n%s", s, c)
		case <-deadline:
			t.Fatalf("console did not show %q within %v; console:\n%s", s, limit, c)
		}
	}
}
