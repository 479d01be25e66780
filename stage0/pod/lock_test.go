package pod

import (
	"errors"
	"testing"
	"time"

	"rkt.dev/rkt/internal/lock"
)

// TestTryLockWaitsOutProbes: a lister's shared probe must not make a pod
// look busy to TryLock, while a real holder (exclusive) or a shared lock
// kept longer than probeWait still fails it.
func TestTryLockWaitsOutProbes(t *testing.T) {
	cases := []struct {
		name    string
		take    func(*lock.Lock) error
		hold    time.Duration
		wantErr bool
	}{
		{"free", nil, 0, false},
		// Released at once: a late timer on a loaded machine still has
		// nearly all of probeWait.
		{"a short shared probe", (*lock.Lock).Shared, time.Millisecond, false},
		// Held until the test ends, whatever the timing.
		{"an exclusive holder", (*lock.Lock).Exclusive, time.Hour, true},
		{"a shared lock kept for long", (*lock.Lock).Shared, time.Hour, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			created, err := Create(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			created.Close()
			p := &Pod{UUID: created.UUID, dataDir: created.dataDir, dir: created.dir}
			if tc.take != nil {
				other, err := lock.Open(p.Path())
				if err != nil {
					t.Fatal(err)
				}
				if err := tc.take(other); err != nil {
					t.Fatal(err)
				}
				timer := time.AfterFunc(tc.hold, func() { other.Close() })
				defer func() { timer.Stop(); other.Close() }()
			}
			start := time.Now()
			err = p.TryLock()
			if tc.wantErr {
				if !errors.Is(err, lock.ErrLocked) {
					t.Fatalf("TryLock = %v, want lock.ErrLocked", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("TryLock = %v after %v", err, time.Since(start))
			}
			p.Close()
		})
	}
}
