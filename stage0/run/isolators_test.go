package run

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/appc/spec/schema/types"
)

func TestIsolatorOptionsApply(t *testing.T) {
	shares, oom := 512, -10
	image := `[{"name":"os/linux/capabilities-remove-set","value":{"set":["CAP_KILL"]}},{"name":"resource/memory","value":{"limit":"1G"}},{"name":"os/linux/no-new-privileges","value":true}]`
	cases := []struct {
		name string
		opts IsolatorOptions
		want string // the isolators as JSON, after a round trip
	}{
		{"nothing given keeps the image's", IsolatorOptions{}, image},
		{"flags replace the image's isolators of their kind", IsolatorOptions{Memory: "64M", CapsRetain: []string{"CAP_NET_BIND_SERVICE"}, CPU: "500m", CPUShares: &shares, OOMScoreAdj: &oom},
			`[{"name":"os/linux/no-new-privileges","value":true},{"name":"resource/memory","value":{"default":false,"request":"64Mi","limit":"64Mi"}},` +
				`{"name":"resource/cpu","value":{"default":false,"request":"500m","limit":"500m"}},{"name":"os/linux/cpu-shares","value":512},{"name":"os/linux/oom-score-adj","value":-10},` +
				`{"name":"os/linux/capabilities-retain-set","value":{"set":["CAP_NET_BIND_SERVICE"]}}]`},
		{"seccomp", IsolatorOptions{Seccomp: "mode=remove,errno=ENOSYS,mkdir, rmdir"},
			image[:len(image)-1] + `,{"name":"os/linux/seccomp-remove-set","value":{"set":["mkdir","rmdir"],"errno":"ENOSYS"}}]`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var isos types.Isolators
			if err := json.Unmarshal([]byte(image), &isos); err != nil {
				t.Fatal(err)
			}
			if err := tc.opts.apply(&isos); err != nil {
				t.Fatal(err)
			}
			got, err := json.Marshal(isos)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestMemoryQuantity(t *testing.T) {
	for in, want := range map[string]string{
		"64M": "64Mi", "64m": "64Mi", "512k": "512Ki", "2G": "2Gi", "1t": "1Ti",
		"64Mi": "64Mi", "64000000": "64000000", "1e9": "1e9", "1.5G": "1.5Gi", "1.2.3G": "1.2.3G", ".": ".", "M": "M", "lots": "lots", "": "",
	} {
		if got := memoryQuantity(in); got != want {
			t.Errorf("memoryQuantity(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestIsolatorOptionsErrors(t *testing.T) {
	cases := []struct {
		name string
		opts IsolatorOptions
		want string
	}{
		{"bad memory", IsolatorOptions{Memory: "lots"}, "--memory=lots"},
		{"retain and remove", IsolatorOptions{CapsRetain: []string{"CAP_KILL"}, CapsRemove: []string{"CAP_KILL"}}, "cannot be combined"},
		{"seccomp without mode", IsolatorOptions{Seccomp: "mkdir"}, "mode must be retain or remove"},
		{"seccomp unknown key", IsolatorOptions{Seccomp: "mode=retain,level=3,read"}, `unknown key "level"`},
		{"seccomp empty set", IsolatorOptions{Seccomp: "mode=retain"}, "set must be non-empty"},
		{"seccomp bad errno", IsolatorOptions{Seccomp: "mode=remove,errno=perm,mkdir"}, "errno must start with an 'E'"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var isos types.Isolators
			err := tc.opts.apply(&isos)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}
