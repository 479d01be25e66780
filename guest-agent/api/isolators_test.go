package api

import (
	"reflect"
	"testing"

	"google.golang.org/protobuf/proto"

	"rkt.dev/rkt/stage1/supervisor"
)

func TestIsolatorsRoundTrip(t *testing.T) {
	adj := -500
	tests := []struct {
		name string
		in   supervisor.Isolators
	}{
		{"none", supervisor.Isolators{}},
		{"empty capability set", supervisor.Isolators{Capabilities: []string{}}},
		{"everything", supervisor.Isolators{
			Capabilities:    []string{"CAP_CHOWN", "CAP_KILL"},
			NoNewPrivileges: true,
			Seccomp:         &supervisor.Seccomp{Mode: supervisor.SeccompRemove, Syscalls: []string{"reboot"}, Errno: "ENOSYS"},
			OOMScoreAdj:     &adj,
			MemoryLimit:     64 << 20,
			CPUMillis:       500,
			CPUShares:       512,
			Cgroup:          "pod/app",
			MaskKernelPaths: true,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := proto.Marshal(NewIsolators(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			var wire Isolators
			if err := proto.Unmarshal(b, &wire); err != nil {
				t.Fatal(err)
			}
			if got := wire.Supervisor(); !reflect.DeepEqual(got, tt.in) {
				t.Errorf("round trip = %+v, want %+v", got, tt.in)
			}
		})
	}
}
