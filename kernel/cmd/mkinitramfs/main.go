// Command mkinitramfs writes the KVM stage1 guest's initramfs: an
// uncompressed newc cpio archive with the given binary as /init, the standard
// mount points and device nodes (see kernel/initramfs), and extra files.
//
//	mkinitramfs -init BIN -o OUT [-add SRC:DEST ...]
//
// It exists so the Makefile can build the initramfs without cpio(1), a
// shell pipeline, or root (device nodes are only entries in the archive).
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"rkt.dev/rkt/kernel/initramfs"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "mkinitramfs:", err)
		os.Exit(1)
	}
}

// run parses args and writes the archive.
func run(args []string) error {
	fl := flag.NewFlagSet("mkinitramfs", flag.ContinueOnError)
	initBin := fl.String("init", "", "static binary to install as /init (required)")
	out := fl.String("o", "", "output file (required)")
	var extra []initramfs.File
	fl.Func("add", "copy host file SRC to DEST in the archive, keeping SRC's permissions (`SRC:DEST`, repeatable)", func(v string) error {
		f, err := parseAdd(v)
		if err != nil {
			return err
		}
		extra = append(extra, f)
		return nil
	})
	if err := fl.Parse(args); err != nil {
		return err
	}
	if *initBin == "" || *out == "" || fl.NArg() > 0 {
		fl.Usage()
		return errors.New("usage: mkinitramfs -init BIN -o OUT [-add SRC:DEST ...]")
	}
	if _, err := os.Stat(*initBin); err != nil {
		return fmt.Errorf("the -init binary: %w", err)
	}
	return writeAtomically(*out, append(initramfs.Standard(*initBin), extra...))
}

// parseAdd turns "SRC:DEST" into a regular file entry with SRC's
// permission bits, so an executable stays executable in the guest.
func parseAdd(v string) (initramfs.File, error) {
	src, dest, ok := strings.Cut(v, ":")
	if !ok || src == "" || dest == "" {
		return initramfs.File{}, fmt.Errorf("-add %q: want SRC:DEST, for example ./agent.conf:/etc/rkt/agent.conf", v)
	}
	info, err := os.Stat(src)
	if err != nil {
		return initramfs.File{}, fmt.Errorf("-add %q: %w", v, err)
	}
	if !info.Mode().IsRegular() {
		return initramfs.File{}, fmt.Errorf("-add %q: %s is not a regular file", v, src)
	}
	return initramfs.File{Path: dest, Mode: info.Mode().Perm(), Source: src}, nil
}

// writeAtomically writes the archive next to out and renames it into place,
// so a failed or interrupted run never leaves a truncated initramfs that a
// later boot would try to use.
func writeAtomically(out string, files []initramfs.File) error {
	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".*")
	if err != nil {
		return fmt.Errorf("creating the output file: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op once renamed
	if err := initramfs.Write(tmp, files); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("setting the output file's mode: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return fmt.Errorf("moving the archive into place: %w", err)
	}
	return nil
}
