package seccompfilter

import (
	"strings"
	"testing"
)

func TestCompile(t *testing.T) {
	tests := []struct {
		name       string
		mode       string
		syscalls   []string
		errno      string
		wantErr    string
		wantCapset bool
	}{
		{name: "default profile", mode: Remove, syscalls: DefaultBlocklist},
		{name: "remove with errno", mode: Remove, syscalls: []string{"mkdir"}, errno: "EROFS"},
		{name: "retain has a capset variant", mode: Retain, syscalls: []string{"read", "write"}, wantCapset: true},
		{name: "retain already allowing capset", mode: Retain, syscalls: []string{"read", "capset"}, wantCapset: true},
		{name: "unknown syscall", mode: Remove, syscalls: []string{"nosuchcall"}, wantErr: `unknown system call "nosuchcall"`},
		{name: "unknown errno", mode: Remove, syscalls: []string{"mkdir"}, errno: "EWHAT", wantErr: `unknown errno "EWHAT"`},
		{name: "bad mode", mode: "drop", syscalls: []string{"mkdir"}, wantErr: "neither retain nor remove"},
		{name: "empty remove set", mode: Remove, wantErr: "the remove set is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			filter, capset, err := Compile(tt.mode, tt.syscalls, tt.errno)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Compile error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(filter) == 0 {
				t.Fatal("no program")
			}
			if (capset != nil) != tt.wantCapset {
				t.Errorf("capset variant %v, want %v", capset != nil, tt.wantCapset)
			}
		})
	}
}
