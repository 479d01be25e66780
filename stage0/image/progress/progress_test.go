package progress

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

// Without a terminal every step is one plain line and bars print only the
// line that starts them: no escape codes, no redrawing.
func TestPlainOutput(t *testing.T) {
	var buf bytes.Buffer
	o := New(&buf)
	o.Stepf("fetching %s", "docker://example/busybox")
	b := o.Bar("layer sha256:0123456789ab", 3<<20)
	if _, err := io.Copy(io.Discard, b.Reader(strings.NewReader("data"))); err != nil {
		t.Fatal(err)
	}
	b.Done()
	o.Bar("config", 0).Abort()
	o.Task("rendering", "example.com/app:1.0", 2048).Done()
	o.Close()
	want := "rkt: fetching docker://example/busybox\n" +
		"rkt: downloading layer sha256:0123456789ab (3.0 MiB)\n" +
		"rkt: downloading config\n" +
		"rkt: rendering example.com/app:1.0 (2.0 KiB)\n"
	if buf.String() != want {
		t.Errorf("output:\n%q\nwant:\n%q", buf.String(), want)
	}
}

func TestNilOutput(t *testing.T) {
	var o *Output
	o.Stepf("nothing")
	b := o.Bar("x", 1)
	if _, err := io.ReadAll(b.Reader(strings.NewReader("x"))); err != nil {
		t.Fatal(err)
	}
	b.Done()
	o.Task("rendering", "x", 1).Abort()
	o.Close()
}

func TestSize(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 5 << 20: "5.0 MiB", 3 << 30: "3.0 GiB"} {
		if got := Size(n); got != want {
			t.Errorf("Size(%d) = %q, want %q", n, got, want)
		}
	}
}
