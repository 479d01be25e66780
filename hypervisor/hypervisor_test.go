package hypervisor

import (
	"os"
	"strings"
	"syscall"
	"testing"
)

func TestExitStateString(t *testing.T) {
	tests := []struct {
		state ExitState
		want  string
	}{
		{ExitState{Reason: ExitPoweroff}, "guest powered off"},
		{ExitState{Reason: ExitStopped, Detail: "QEMU shutdown reason host-qmp-quit"}, "stopped by the host: QEMU shutdown reason host-qmp-quit"},
		{ExitState{Reason: ExitGuestCrash, ExitCode: 1, Detail: "Kernel panic - not syncing: Attempted to kill init!"},
			"guest crashed (hypervisor exit status 1): Kernel panic - not syncing: Attempted to kill init!"},
		{ExitState{Reason: ExitHypervisorFailed, ExitCode: -1, Signal: syscall.SIGKILL}, "hypervisor failed (hypervisor killed by SIGKILL)"},
		{ExitState{Reason: ExitReason(42)}, "ExitReason(42)"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.state.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDetectAccel(t *testing.T) {
	accel, notice := DetectAccel()
	f, err := os.OpenFile(KVMDevice, os.O_RDWR, 0)
	if err == nil {
		f.Close()
	}
	switch {
	case err == nil && (accel != KVM || notice != ""):
		t.Errorf("%s is usable but got %s with notice %q", KVMDevice, accel, notice)
	case err != nil && accel != TCG:
		t.Errorf("%s is not usable (%v) but got %s", KVMDevice, err, accel)
	case err != nil && (!strings.HasPrefix(notice, "rkt: ") || strings.Contains(notice, "\n") || !strings.Contains(notice, "TCG")):
		t.Errorf("notice %q is not one line starting with \"rkt: \" that mentions TCG", notice)
	}
}
