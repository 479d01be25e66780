package main

import (
	"encoding/json"
	"testing"

	"github.com/appc/spec/schema/types"

	"rkt.dev/rkt/stage1"
)

// isolators builds an app's isolators from resource limits ("" = none).
func isolators(t *testing.T, mem, cpu string) types.Isolators {
	t.Helper()
	var isos types.Isolators
	add := func(name, limit string) {
		if limit == "" {
			return
		}
		raw := json.RawMessage(`{"limit":"` + limit + `"}`)
		var iso types.Isolator
		b, _ := json.Marshal(map[string]any{"name": name, "value": raw})
		if err := json.Unmarshal(b, &iso); err != nil {
			t.Fatalf("isolator %s=%s: %v", name, limit, err)
		}
		isos = append(isos, iso)
	}
	add(types.ResourceMemoryName, mem)
	add(types.ResourceCPUName, cpu)
	return isos
}

func TestSizeVM(t *testing.T) {
	type limits struct{ mem, cpu string }
	tests := []struct {
		name     string
		apps     []limits
		hostCPUs int
		want     vmSize
		wantErr  bool
	}{
		{"no limits", []limits{{}}, 8, vmSize{memoryOverheadMiB + defaultAppMemoryMiB, 1}, false},
		{"memory limit", []limits{{mem: "64M"}}, 8, vmSize{memoryOverheadMiB + 62, 1}, false},
		{"memory limit rounds up to MiB", []limits{{mem: "1Mi"}, {mem: "1000001"}}, 8, vmSize{memoryOverheadMiB + 1 + 1, 2}, false},
		{"two apps, one without limits", []limits{{mem: "512Mi", cpu: "250m"}, {}}, 8, vmSize{memoryOverheadMiB + 512 + defaultAppMemoryMiB, 2}, false},
		{"cpu sum rounds up", []limits{{cpu: "1500m"}, {cpu: "600m"}}, 8, vmSize{memoryOverheadMiB + 2*defaultAppMemoryMiB, 3}, false},
		{"at most host CPUs", []limits{{cpu: "16"}}, 2, vmSize{memoryOverheadMiB + defaultAppMemoryMiB, 2}, false},
		{"at least one vCPU", []limits{{cpu: "10m"}}, 2, vmSize{memoryOverheadMiB + defaultAppMemoryMiB, 1}, false},
		{"zero limit", []limits{{mem: "0"}}, 2, vmSize{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var apps []stage1.App
			for i, l := range tt.apps {
				apps = append(apps, stage1.App{Name: types.ACName("app" + string(rune('a'+i))), Isolators: isolators(t, l.mem, l.cpu)})
			}
			got, err := sizeVM(apps, tt.hostCPUs)
			if (err != nil) != tt.wantErr {
				t.Fatalf("sizeVM error = %v, want error %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("sizeVM = %+v, want %+v", got, tt.want)
			}
		})
	}
}
