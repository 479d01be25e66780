package apprun

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/appc/spec/schema/types"

	"rkt.dev/rkt/stage1/seccompfilter"
	"rkt.dev/rkt/stage1/supervisor"
)

// isolators parses isolators as a manifest would carry them.
func isolators(t *testing.T, js string) types.Isolators {
	t.Helper()
	var isos types.Isolators
	if err := json.Unmarshal([]byte(js), &isos); err != nil {
		t.Fatal(err)
	}
	return isos
}

func TestSupervisorIsolators(t *testing.T) {
	oom := -100
	def := IsolatorOptions{Defaults: true, CgroupParent: "rkt-1"}
	defaultSeccomp := &supervisor.Seccomp{Mode: supervisor.SeccompRemove, Syscalls: seccompfilter.DefaultBlocklist}
	cases := []struct {
		name string
		js   string
		opts IsolatorOptions
		want supervisor.Isolators
	}{
		{"defaults of an isolating flavor", `[]`, def,
			supervisor.Isolators{Capabilities: DefaultCapabilities, Seccomp: defaultSeccomp, MaskKernelPaths: true}},
		{"fly applies nothing unasked", `[]`, IsolatorOptions{}, supervisor.Isolators{}},
		{"retain set", `[{"name":"os/linux/capabilities-retain-set","value":{"set":["CAP_NET_BIND_SERVICE"]}}]`, def,
			supervisor.Isolators{Capabilities: []string{"CAP_NET_BIND_SERVICE"}, Seccomp: defaultSeccomp, MaskKernelPaths: true}},
		{"remove set is taken from the default set", `[{"name":"os/linux/capabilities-remove-set","value":{"set":["CAP_CHOWN","CAP_SYS_ADMIN","CAP_AUDIT_WRITE","CAP_DAC_OVERRIDE","CAP_FSETID","CAP_FOWNER","CAP_KILL","CAP_MKNOD","CAP_NET_RAW","CAP_SETUID","CAP_SETGID","CAP_SETPCAP","CAP_SETFCAP","CAP_SYS_CHROOT"]}}]`,
			IsolatorOptions{}, supervisor.Isolators{Capabilities: []string{"CAP_NET_BIND_SERVICE"}}},
		{"insecure options relax everything", `[{"name":"os/linux/capabilities-retain-set","value":{"set":["CAP_KILL"]}},{"name":"os/linux/seccomp-remove-set","value":{"set":["mkdir"]}}]`,
			IsolatorOptions{Defaults: true, DisableCapabilities: true, DisablePaths: true, DisableSeccomp: true}, supervisor.Isolators{}},
		{"seccomp retain with errno", `[{"name":"os/linux/seccomp-retain-set","value":{"set":["read","write"],"errno":"ENOSYS"}}]`, IsolatorOptions{},
			supervisor.Isolators{Seccomp: &supervisor.Seccomp{Mode: supervisor.SeccompRetain, Syscalls: []string{"read", "write"}, Errno: "ENOSYS"}}},
		{"retain all turns seccomp off", `[{"name":"os/linux/seccomp-retain-set","value":{"set":["@appc.io/all"]}}]`, def,
			supervisor.Isolators{Capabilities: DefaultCapabilities, MaskKernelPaths: true}},
		{"remove empty is the default profile", `[{"name":"os/linux/seccomp-remove-set","value":{"set":["@appc.io/empty"],"errno":"EACCES"}}]`, IsolatorOptions{},
			supervisor.Isolators{Seccomp: &supervisor.Seccomp{Mode: supervisor.SeccompRemove, Syscalls: seccompfilter.DefaultBlocklist, Errno: "EACCES"}}},
		{"default block list wildcard", `[{"name":"os/linux/seccomp-remove-set","value":{"set":["@rkt/default-blacklist","mkdir"]}}]`, IsolatorOptions{},
			supervisor.Isolators{Seccomp: &supervisor.Seccomp{Mode: supervisor.SeccompRemove, Syscalls: append(append([]string{}, seccompfilter.DefaultBlocklist...), "mkdir")}}},
		{"resources and the rest", `[{"name":"resource/memory","value":{"limit":"64M"}},{"name":"resource/cpu","value":{"limit":"500m"}},
			{"name":"os/linux/cpu-shares","value":512},{"name":"os/linux/oom-score-adj","value":-100},{"name":"os/linux/no-new-privileges","value":true}]`,
			IsolatorOptions{CgroupParent: "rkt-1"},
			supervisor.Isolators{MemoryLimit: 64_000_000, CPUMillis: 500, CPUShares: 512, OOMScoreAdj: &oom, NoNewPrivileges: true, Cgroup: "rkt-1/app"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := SupervisorIsolators("app", isolators(t, tc.js), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			// The programs are seccompfilter's to test; here they
			// must be there.
			if f := got.Seccomp; f != nil {
				if len(f.Filter) == 0 || (f.Mode == supervisor.SeccompRetain) != (f.CapsetFilter != nil) {
					t.Errorf("seccomp programs not compiled: %d instructions, capset variant %v", len(f.Filter), f.CapsetFilter != nil)
				}
				spec := *f
				spec.Filter, spec.CapsetFilter = nil, nil
				got.Seccomp = &spec
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestSupervisorIsolatorsErrors(t *testing.T) {
	cases := []struct{ name, js, want string }{
		{"retain and remove", `[{"name":"os/linux/capabilities-retain-set","value":{"set":["CAP_KILL"]}},{"name":"os/linux/capabilities-remove-set","value":{"set":["CAP_KILL"]}}]`, "cannot be combined"},
		{"two seccomp sets", `[{"name":"os/linux/seccomp-retain-set","value":{"set":["read"]}},{"name":"os/linux/seccomp-remove-set","value":{"set":["mkdir"]}}]`, "only one seccomp isolator"},
		{"unknown wildcard", `[{"name":"os/linux/seccomp-remove-set","value":{"set":["@systemd/clock"]}}]`, `unknown wildcard "@systemd/clock"`},
		// Compiling happens here, so that a bad filter fails before
		// anything starts.
		{"unknown system call", `[{"name":"os/linux/seccomp-remove-set","value":{"set":["nosuchcall"]}}]`, `app app: seccomp: unknown system call "nosuchcall"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := SupervisorIsolators("app", isolators(t, tc.js), IsolatorOptions{Defaults: true})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}
