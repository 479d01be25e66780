package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestParsePrivateUsers(t *testing.T) {
	cases := []struct {
		in, err string
		want    userRange
	}{
		{in: "100000", want: userRange{100000, 65536}},
		{in: "100000:1000", want: userRange{100000, 1000}},
		{in: "0", err: "non-root uid range"},
		{in: "x:1", err: "want auto or SHIFT[:COUNT]"},
		{in: "4294967000:65536", err: "non-root uid range"},
	}
	for _, tc := range cases {
		got, err := parsePrivateUsers(tc.in, "u")
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: got %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
	a, err := parsePrivateUsers("auto", "a-uuid")
	if err != nil || a.count != usersCount || a.shift < 2*usersCount || a.shift%usersCount != 0 {
		t.Errorf("auto: got %+v, %v; want an aligned range of %d above the first two", a, err, usersCount)
	}
}

func TestDropLine(t *testing.T) {
	var out bytes.Buffer
	d := &dropLine{w: &out, prefix: []byte(propagateNoise)}
	for _, chunk := range []string{"app line\n" + propagateNoise + "x\", and we", " can't allow that.\nlast", " words"} {
		d.Write([]byte(chunk))
	}
	d.flush()
	if got, want := out.String(), "app line\nlast words"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
