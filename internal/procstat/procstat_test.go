package procstat

import (
	"os"
	"testing"
)

func TestParse(t *testing.T) {
	tail := " S 42 7 7 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10"
	cases := []struct {
		name, in string
		want     Stat
		wantErr  bool
	}{
		{"plain", "123 (sleep)" + tail, Stat{PPID: 42, StartTime: 987654}, false},
		{"name with spaces and parens", "123 (a) b (c)" + tail, Stat{PPID: 42, StartTime: 987654}, false},
		{"no parenthesis", "123 sleep S 42", Stat{}, true},
		{"truncated", "123 (sleep) S 42 7", Stat{}, true},
	}
	for _, c := range cases {
		got, err := parse(123, c.in)
		if (err != nil) != c.wantErr || got != c.want {
			t.Errorf("%s: parse = %+v, %v; want %+v (error %v)", c.name, got, err, c.want, c.wantErr)
		}
	}
}

func TestReadSelf(t *testing.T) {
	st, err := Read(os.Getpid())
	if err != nil || st.PPID != os.Getppid() || st.StartTime == 0 {
		t.Fatalf("Read(self) = %+v, %v; want parent %d", st, err, os.Getppid())
	}
}
