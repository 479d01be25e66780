package procstat

import (
	"os"
	"os/exec"
	"slices"
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

func TestChildren(t *testing.T) {
	cmd := exec.Command("sleep", "10")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	if kids := Children(os.Getpid()); !slices.Contains(kids, cmd.Process.Pid) {
		t.Errorf("Children(self) = %v, want it to hold %d", kids, cmd.Process.Pid)
	}
	if kids := Children(cmd.Process.Pid); len(kids) != 0 {
		t.Errorf("Children(sleep) = %v, want none", kids)
	}
	if kids := Children(1 << 30); kids != nil {
		t.Errorf("Children of a missing process = %v, want none", kids)
	}
}
