// Package benchutil runs rkt's benchmarks the one way they are reported:
// a subject measured against a baseline in the same run, alternating, with
// the medians and their ratio printed as
//
//	BENCH <name> <median subject> <median baseline> ratio=<subject/baseline>
//
// Measuring both in one run, interleaved, makes the ratio hold whatever the
// machine's speed or load does to absolute times.
package benchutil

import (
	"fmt"
	"io"
	"os"
	"sort"
	"time"
)

// MinRuns is the fewest measured runs a benchmark may report from.
const MinRuns = 5

// Measure times one run.
type Measure func() (time.Duration, error)

// Pair is a subject (B, what rkt does) and its baseline (A).
type Pair struct {
	Name string
	A, B Measure
}

// Compare warms each measure up once (not counted: first runs fill caches
// and render images), then runs every pair's A and B alternately runs
// times, logging each run to log, and prints one BENCH line per pair to
// stdout.
func Compare(runs int, log io.Writer, pairs ...Pair) error {
	if runs < MinRuns {
		return fmt.Errorf("at least %d runs are needed, not %d", MinRuns, runs)
	}
	for _, p := range pairs {
		for _, m := range []Measure{p.A, p.B} {
			if _, err := m(); err != nil {
				return fmt.Errorf("%s: warm-up: %w", p.Name, err)
			}
		}
	}
	as := make([][]time.Duration, len(pairs))
	bs := make([][]time.Duration, len(pairs))
	for i := 0; i < runs; i++ {
		for j, p := range pairs {
			a, err := p.A()
			if err != nil {
				return fmt.Errorf("%s: %w", p.Name, err)
			}
			b, err := p.B()
			if err != nil {
				return fmt.Errorf("%s: %w", p.Name, err)
			}
			as[j], bs[j] = append(as[j], a), append(bs[j], b)
			fmt.Fprintf(log, "run %d %s: baseline %s, rkt %s\n", i+1, p.Name, a.Round(time.Millisecond), b.Round(time.Millisecond))
		}
	}
	for j, p := range pairs {
		ma, mb := Median(as[j]), Median(bs[j])
		fmt.Fprintf(os.Stdout, "BENCH %s %.3fs %.3fs ratio=%.2f\n", p.Name, mb.Seconds(), ma.Seconds(), mb.Seconds()/ma.Seconds())
	}
	return nil
}

// Median is the middle of ds (the mean of the two middle values for an even
// count).
func Median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration{}, ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
