//go:build linux

// Command floorinit is the smallest useful /init for the KVM stage1 guest:
// it prints a marker line on the console and powers the VM off. Booting it
// measures the "bare floor" of a pod start (QEMU + kernel + a static Go
// init, no agent, no apps), and the hypervisor tests boot it to check the
// driver end to end.
//
// Build it static: CGO_ENABLED=0 go build ./tests/bench/floorinit
//
// The first argument after "--" on the kernel command line picks a mode:
//
//	poweroff  (default) print the marker and power off
//	exit      print the marker and exit, which makes the kernel panic
//	sleep     print the marker and run until killed, ignoring power-button
//	button    print the marker and power off when the ACPI power button is
//	          pressed (QEMU's system_powerdown)
//	echo      print the marker and echo bytes on the virtio-serial port
//	          named rkt.agent until killed
package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"rkt.dev/rkt/internal/guestos"
)

// Marker is printed on the console once init runs; tests and benchmarks
// wait for it.
const Marker = "rkt-floor-init: up"

func main() {
	mode := "poweroff"
	if len(os.Args) > 1 {
		mode = os.Args[1]
	}
	var uts unix.Utsname
	unix.Uname(&uts) // cannot fail; the release shows which kernel booted
	fmt.Printf("%s (mode %s, kernel %s)\n", Marker, mode, unix.ByteSliceToString(uts.Release[:]))
	switch mode {
	case "poweroff":
	case "exit":
		return
	case "sleep":
		for {
			time.Sleep(time.Hour)
		}
	case "button":
		fail(waitPowerButton())
	case "echo":
		fail(echo("rkt.agent"))
	default:
		fail(fmt.Errorf("unknown mode %q", mode))
	}
	powerOff()
}

// fail reports err and powers off, so a test sees both the reason on the
// console and a prompt end of QEMU instead of a panic or a hang.
func fail(err error) {
	if err != nil {
		fmt.Println("rkt-floor-init: error:", err)
		powerOff()
	}
}

// powerOff ends the VM; with ACPI the hypervisor exits with a clean
// "guest-shutdown".
func powerOff() {
	err := unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	// Reached only if the kernel refused; exiting makes it panic, which
	// still ends the VM.
	fmt.Println("rkt-floor-init: power off failed:", err)
	os.Exit(1)
}

// waitPowerButton returns once any input device reports KEY_POWER pressed.
func waitPowerButton() error {
	if err := guestos.MountDevAndSys(); err != nil {
		return err
	}
	devices, err := filepath.Glob("/dev/input/event*")
	if err != nil || len(devices) == 0 {
		return fmt.Errorf("no input devices under /dev/input (is CONFIG_INPUT_EVDEV on?)")
	}
	// Open every device before saying so: evdev only queues events for
	// readers that already have the device open.
	var inputs []*os.File
	for _, dev := range devices {
		f, err := os.Open(dev)
		if err != nil {
			return err
		}
		inputs = append(inputs, f)
	}
	fmt.Println("rkt-floor-init: waiting for the power button")
	pressed := make(chan error, len(inputs))
	for _, f := range inputs {
		go func() {
			err := guestos.WaitPowerKey(f)
			if err == nil {
				fmt.Println("rkt-floor-init: power button pressed")
			}
			pressed <- err
		}()
	}
	return <-pressed
}

// echo copies everything read from the named virtio-serial port back to it.
// The host side may disconnect and reconnect: the guest then reads EOF once
// and the port works again.
func echo(name string) error {
	if err := guestos.MountDevAndSys(); err != nil {
		return err
	}
	dev, err := guestos.FindPort(name)
	if err != nil {
		return err
	}
	port, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	fmt.Printf("rkt-floor-init: echoing on %s\n", dev)
	buf := make([]byte, 4096)
	for {
		n, err := port.Read(buf)
		if n > 0 {
			if _, err := port.Write(buf[:n]); err != nil {
				return fmt.Errorf("writing %s: %w", dev, err)
			}
		}
		switch {
		case err == io.EOF || n == 0:
			// The host disconnected; wait for the next connection
			// without spinning.
			time.Sleep(10 * time.Millisecond)
		case err != nil:
			return fmt.Errorf("reading %s: %w", dev, err)
		}
	}
}
