package api

import (
	"reflect"
	"testing"

	"golang.org/x/sys/unix"
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
			Seccomp: &supervisor.Seccomp{Mode: supervisor.SeccompRetain, Syscalls: []string{"read"}, Errno: "ENOSYS",
				Filter:       []unix.SockFilter{{Code: 0x20, K: 4}, {Code: 0x15, Jt: 1, Jf: 2, K: 0xc000003e}, {Code: 0x6, K: 0x7fff0000}},
				CapsetFilter: []unix.SockFilter{{Code: 0x6, K: 0xffffffff}}},
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

// A program whose length is not a whole number of entries is dropped, so
// that the supervisor refuses the app rather than load half a filter.
func TestTruncatedFilterIsDropped(t *testing.T) {
	wire := &Isolators{Seccomp: &Seccomp{Mode: "remove", Syscalls: []string{"reboot"}, Filter: make([]byte, 12)}}
	if got := wire.Supervisor().Seccomp; got == nil || got.Filter != nil {
		t.Errorf("decoded %+v, want a seccomp spec without a program", got)
	}
}
