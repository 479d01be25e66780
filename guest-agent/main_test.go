package main

import "testing"

func TestParseHooks(t *testing.T) {
	tests := []struct {
		cmdline string
		want    hooks
	}{
		{"console=ttyS0 panic=-1 quiet", hooks{}},
		{"console=ttyS0 rkt.test_panic=1\n", hooks{panic: true}},
		{"rkt.test_agent_exit=1 quiet", hooks{agentExit: true}},
		{"rkt.test_panic=0 rkt.test_panic_x=1 xrkt.test_agent_exit=1", hooks{}},
		{"rkt.test_panic=1 rkt.test_agent_exit=1", hooks{panic: true, agentExit: true}},
		{"quiet rkt.test_agent_silent=1", hooks{silent: true}},
	}
	for _, tt := range tests {
		if got := parseHooks(tt.cmdline); got != tt.want {
			t.Errorf("parseHooks(%q) = %+v, want %+v", tt.cmdline, got, tt.want)
		}
	}
}
