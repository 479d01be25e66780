package network

import (
	"reflect"
	"testing"
)

func TestParseNets(t *testing.T) {
	cases := []struct {
		in      string
		want    Spec
		wantErr bool
	}{
		{"", Spec{Mode: ModeCNI, Nets: []Request{{Name: "default"}}}, false},
		{"default", Spec{Mode: ModeCNI, Nets: []Request{{Name: "default"}}}, false},
		{"none", Spec{Mode: ModeNone}, false},
		{"host", Spec{Mode: ModeHost}, false},
		{"a,b", Spec{Mode: ModeCNI, Nets: []Request{{Name: "a"}, {Name: "b"}}}, false},
		{"a:IP=10.0.0.5;X=y", Spec{Mode: ModeCNI, Nets: []Request{{Name: "a", Args: [][2]string{{"IP", "10.0.0.5"}, {"X", "y"}}}}}, false},
		{"a,host", Spec{}, true},
		{"a,a", Spec{}, true},
		{"a:junk", Spec{}, true},
		{",", Spec{}, true},
		{"all", Spec{}, true},
	}
	for _, c := range cases {
		got, err := ParseNets(c.in)
		if (err != nil) != c.wantErr {
			t.Errorf("ParseNets(%q) error %v, want error %v", c.in, err, c.wantErr)
			continue
		}
		if !c.wantErr && !reflect.DeepEqual(got, c.want) {
			t.Errorf("ParseNets(%q) = %+v, want %+v", c.in, got, c.want)
		}
	}
}
