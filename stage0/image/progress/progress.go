// Package progress shows what an image fetch or render is doing: a
// progress bar per download or extracted image when the output is a
// terminal, and one plain line per step otherwise, so logs and CI output
// stay readable and free of escape codes.
package progress

import (
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"
)

// Output reports progress to one writer (rkt's stderr). Its methods may be
// called from several goroutines at once; a nil *Output reports nothing.
type Output struct {
	w  io.Writer
	mu sync.Mutex
	// bars is the bar container while bars are shown; created with the
	// first bar and waited for by Close, so plain lines printed between
	// fetches do not fight with a redrawing container.
	bars     *mpb.Progress
	terminal bool
}

// New returns an Output writing to w. Bars are drawn only when w is a
// terminal; otherwise each step is one line.
func New(w io.Writer) *Output {
	o := &Output{w: w}
	if f, ok := w.(*os.File); ok {
		o.terminal = term.IsTerminal(int(f.Fd()))
	}
	return o
}

// Stepf prints one line, prefixed with "rkt: ", above any bars.
func (o *Output) Stepf(format string, args ...any) {
	if o == nil {
		return
	}
	line := fmt.Sprintf("rkt: "+format+"\n", args...)
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.bars != nil {
		o.bars.Write([]byte(line))
		return
	}
	io.WriteString(o.w, line)
}

// Bar tracks one transfer of total bytes (0 or less when unknown), such
// as a layer download. Without a terminal it prints one line as it starts,
// "downloading NAME (SIZE)".
func (o *Output) Bar(name string, total int64) *Bar {
	return o.bar("downloading", name, name, total)
}

// Task tracks work other than a download that reads total bytes, such as
// extracting an image: a bar labelled "VERB NAME" on a terminal, otherwise
// one line "VERB NAME (SIZE)" as it starts.
func (o *Output) Task(verb, name string, total int64) *Bar {
	return o.bar(verb, name, verb+" "+name, total)
}

// bar is Bar and Task. Download bars keep their bare name as the label:
// a fetch shows only downloads as bars, so the verb would only take room.
func (o *Output) bar(verb, name, label string, total int64) *Bar {
	if o == nil {
		return &Bar{}
	}
	if !o.terminal {
		size := ""
		if total > 0 {
			size = " (" + Size(total) + ")"
		}
		o.Stepf("%s %s%s", verb, name, size)
		return &Bar{}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.bars == nil {
		o.bars = mpb.New(mpb.WithOutput(o.w), mpb.WithWidth(40))
	}
	b := o.bars.AddBar(max(total, 0),
		mpb.PrependDecorators(
			decor.Name(label, decor.WCSyncSpaceR),
			decor.CountersKibiByte("% .1f / % .1f", decor.WCSyncSpace),
		),
		mpb.AppendDecorators(decor.OnComplete(decor.Percentage(decor.WCSyncSpace), "done")),
	)
	return &Bar{bar: b, total: total}
}

// Close waits until every bar has been drawn in its final state. Bars
// must be done or aborted first.
func (o *Output) Close() {
	if o == nil {
		return
	}
	o.mu.Lock()
	bars := o.bars
	o.bars = nil
	o.mu.Unlock()
	if bars != nil {
		bars.Wait()
	}
}

// Bar is one transfer shown by an Output.
type Bar struct {
	bar   *mpb.Bar // nil without a terminal
	total int64
	n     int64
}

// Reader returns r counting what is read through it into the bar.
func (b *Bar) Reader(r io.Reader) io.Reader {
	if b.bar == nil {
		return r
	}
	return &countingReader{r: r, b: b}
}

// Done completes the bar, whatever the total said.
func (b *Bar) Done() {
	if b.bar != nil && !b.bar.Completed() {
		b.bar.SetTotal(-1, true)
	}
}

// Abort stops the bar after a failure, leaving it on screen as it was.
func (b *Bar) Abort() {
	if b.bar != nil && !b.bar.Completed() {
		b.bar.Abort(false)
	}
}

type countingReader struct {
	r io.Reader
	b *Bar
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.b.n += int64(n)
		// A server may send more than it announced; keep the bar honest.
		if c.b.n > c.b.total {
			c.b.bar.SetTotal(c.b.n, false)
		}
		c.b.bar.IncrBy(n)
	}
	return n, err
}

// Size prints a byte count with binary units, such as "1.2 MiB".
func Size(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	v := float64(n)
	unit := ""
	for _, u := range []string{"KiB", "MiB", "GiB", "TiB"} {
		v /= 1024
		unit = u
		if v < 1024 {
			break
		}
	}
	return fmt.Sprintf("%.1f %s", v, unit)
}
