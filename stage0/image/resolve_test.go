package image

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	at "rkt.dev/rkt/stage0/image/internal/acitest"
)

func TestResolve(t *testing.T) {
	s, c := newStore(t)
	old := importImage(t, s, "example.com/app", "1.0", nil, at.File("rootfs/v", "1"))
	c.t = c.t.Add(time.Minute)
	newer := importImage(t, s, "example.com/app", "2.0", nil, at.File("rootfs/v", "2"))
	// Two fake records sharing a long prefix make an ambiguous one.
	for _, id := range []string{"sha512-abcd" + strings.Repeat("1", 124), "sha512-abcd" + strings.Repeat("2", 124)} {
		if err := os.WriteFile(s.recordPath(id), []byte(`{"id":"`+id+`"}`), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	for _, tc := range []struct {
		ref     string
		want    string
		wantErr string
	}{
		{ref: old, want: old},
		{ref: old[:20], want: old},
		{ref: strings.ToUpper(old[7:20]), wantErr: "neither an image ID"},
		{ref: "sha512-" + strings.ToUpper(newer[7:20]), want: newer},
		{ref: "example.com/app", want: newer},
		{ref: "example.com/app:1.0", want: old},
		{ref: "example.com/app:2.0", want: newer},
		{ref: "example.com/app:3.0", wantErr: `image "example.com/app:3.0" not found in the store; fetch it first with 'rkt fetch'`},
		{ref: "example.com/other", wantErr: `image "example.com/other" not found in the store`},
		{ref: "sha512-0000000", wantErr: `image "sha512-0000000" not found`},
		{ref: "sha512-abcd", wantErr: "ambiguous"},
		{ref: "sha512-ab", wantErr: "not an image ID"},
		{ref: "sha512-xyz1", wantErr: "not an image ID"},
		{ref: "Not A Name", wantErr: "neither an image ID"},
	} {
		t.Run(tc.ref, func(t *testing.T) {
			got, err := s.Resolve(tc.ref)
			if tc.wantErr != "" {
				assertErrorContains(t, err, tc.wantErr)
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("Resolve = %s, %v; want %s", got, err, tc.want)
			}
		})
	}

	if _, err := s.Resolve("example.com/none"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown name: %v does not match ErrNotFound", err)
	}
}
