package tests

import (
	"strconv"
	"strings"
	"testing"

	"rkt.dev/rkt/tests/testutil"
)

// TestConcurrentRunAndGC runs pods and garbage collections at the same
// time on one data directory: no run may fail because of a gc, and the
// store and pod directories must stay consistent.
func TestConcurrentRunAndGC(t *testing.T) {
	t.Parallel()
	const n = 10
	c := flyCtx(t)
	inspector := c.Image("inspector")
	runs := make([]*testutil.Process, n)
	gcs := make([]*testutil.Process, n)
	// Interleave the starts, so gcs run while pods are created, run and
	// exit; every run imports the images itself, concurrently.
	for i := range n {
		runs[i] = c.Start(flyRunArgs(c, "run", "", inspector, "--", "--print-msg=run-"+strconv.Itoa(i), "--exit-code="+strconv.Itoa(10+i))...)
		gcs[i] = c.Start("gc", "--grace-period=0s")
	}
	for i, p := range runs {
		r := p.Wait()
		if r.ExitCode != 10+i || !testutil.HasLine(r.Stdout, "run-"+strconv.Itoa(i)) {
			t.Errorf("run %d: want its output and exit code %d, got %v", i, 10+i, r)
		}
	}
	for i, p := range gcs {
		if r := p.Wait(); r.ExitCode != 0 {
			t.Errorf("gc %d: %v", i, r)
		}
	}

	c.RunOK("image", "list")
	ims := imageList(t, c)
	if len(ims) != 2 {
		t.Errorf("want the inspector and the stage1 in the store, got %+v", ims)
	}
	for _, im := range ims {
		if r := c.Run("image", "cat-manifest", im.ID); r.ExitCode != 0 || !strings.Contains(r.Stdout, im.Name) {
			t.Errorf("image cat-manifest %s (%s): %v", im.ID, im.Name, r)
		}
	}
	c.RunOK("gc", "--grace-period=0s")
	if left := c.Leftovers(); len(left) != 0 {
		t.Errorf("after the final gc:\n%s", strings.Join(left, "\n"))
	}
}
