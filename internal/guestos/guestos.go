// Package guestos holds the few pieces of system plumbing every /init the
// rkt guest kernel runs needs: the guest agent and the test and benchmark
// inits (tests/bench/floorinit, tests/vsockguest). It depends on nothing
// but the standard library and x/sys, so the benchmark floor's init stays
// as small as it was.
package guestos

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// MountDevAndSys mounts devtmpfs on /dev and sysfs on /sys: an initramfs
// holds only /dev/console and /dev/null, and the kernel does not mount
// devtmpfs by itself when it boots from one.
func MountDevAndSys() error {
	if err := unix.Mount("devtmpfs", "/dev", "devtmpfs", 0, ""); err != nil {
		return fmt.Errorf("mounting devtmpfs on /dev: %w", err)
	}
	if err := unix.Mount("sysfs", "/sys", "sysfs", 0, ""); err != nil {
		return fmt.Errorf("mounting sysfs on /sys: %w", err)
	}
	return nil
}

// FindPort maps a virtio-serial port name to its /dev node through sysfs.
func FindPort(name string) (string, error) {
	if dev, ok := findDevice("/sys/class/virtio-ports/*/name", name); ok {
		return dev, nil
	}
	return "", fmt.Errorf("no virtio-serial port named %s", name)
}

// FindDisk maps a virtio-blk disk's serial to its /dev node through sysfs.
func FindDisk(serial string) (string, error) {
	if dev, ok := findDevice("/sys/block/vd*/serial", serial); ok {
		return dev, nil
	}
	return "", fmt.Errorf("no virtio-blk disk with serial %s", serial)
}

// findDevice returns /dev/NAME for the first sysfs file matching pattern
// (…/NAME/attribute) whose content is value.
func findDevice(pattern, value string) (string, bool) {
	files, _ := filepath.Glob(pattern)
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil && string(bytes.TrimSpace(b)) == value {
			return "/dev/" + filepath.Base(filepath.Dir(p)), true
		}
	}
	return "", false
}

// WaitPowerKey reads struct input_event records from an input device (on
// 64-bit: a 16-byte timeval, then u16 type, u16 code, s32 value) until
// KEY_POWER goes down: QEMU's system_powerdown (the ACPI power button).
func WaitPowerKey(f *os.File) error {
	const (
		evKey    = 1
		keyPower = 116
	)
	var ev [24]byte
	for {
		if _, err := io.ReadFull(f, ev[:]); err != nil {
			return fmt.Errorf("reading %s: %w", f.Name(), err)
		}
		typ := binary.LittleEndian.Uint16(ev[16:])
		code := binary.LittleEndian.Uint16(ev[18:])
		value := int32(binary.LittleEndian.Uint32(ev[20:]))
		if typ == evKey && code == keyPower && value == 1 {
			return nil
		}
	}
}
