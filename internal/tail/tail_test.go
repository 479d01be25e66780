package tail

import "testing"

func TestBuffer(t *testing.T) {
	b := New(16)
	b.Write([]byte("first line\n"))
	b.Write([]byte("panic: a\nok\npanic: b\n"))
	if got := b.String(); got != ": a\nok\npanic: b" {
		t.Errorf("String() = %q, want the last 16 bytes trimmed", got)
	}
	if got := b.LastLineWith("panic"); got != "panic: b" {
		t.Errorf("LastLineWith = %q", got)
	}
	if got := b.LinesWith(":"); got != ": a; panic: b" {
		t.Errorf("LinesWith = %q", got)
	}
	if got := b.LastLineWith("absent"); got != "" {
		t.Errorf("LastLineWith(absent) = %q", got)
	}
}
