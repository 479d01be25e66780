package supervisor

import (
	"reflect"
	"testing"
)

// TestLimitFiles checks the files and values each limit writes, for both
// cgroup versions (a host has only one of them to try for real).
func TestLimitFiles(t *testing.T) {
	cases := []struct {
		name    string
		iso     Isolators
		unified bool
		want    []limitFile
	}{
		{"v1", Isolators{MemoryLimit: 64 << 20, CPUMillis: 250, CPUShares: 512}, false, []limitFile{
			{"memory", "memory.limit_in_bytes", "67108864"},
			{"cpu", "cpu.cfs_period_us", "100000"}, {"cpu", "cpu.cfs_quota_us", "25000"},
			{"cpu", "cpu.shares", "512"},
		}},
		{"v2", Isolators{MemoryLimit: 64 << 20, CPUMillis: 2000, CPUShares: 1024}, true, []limitFile{
			{"memory", "memory.max", "67108864"},
			{"cpu", "cpu.max", "200000 100000"},
			{"cpu", "cpu.weight", "39"},
		}},
		{"v2 share bounds", Isolators{CPUShares: 262144}, true, []limitFile{{"cpu", "cpu.weight", "10000"}}},
		{"no limits", Isolators{}, true, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.iso.limitFiles(tc.unified); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}
