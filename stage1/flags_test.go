package stage1

import "testing"

func TestRunFlagsRoundTrip(t *testing.T) {
	cases := []RunFlags{
		{UUID: "u"},
		{UUID: "u", Nets: "none", Hostname: "h", PrivateUsers: "auto", DisableCapabilities: true, DisablePaths: true, DisableSeccomp: true},
	}
	for _, f := range cases {
		got, err := ParseRunFlags(f.Args())
		if err != nil {
			t.Fatal(err)
		}
		if got != f {
			t.Errorf("%v parsed back as %+v", f.Args(), got)
		}
	}
}
