package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"rkt.dev/rkt/guest-agent/api"
	"rkt.dev/rkt/hypervisor"
	"rkt.dev/rkt/hypervisor/qemu"
	"rkt.dev/rkt/hypervisor/transport"
	"rkt.dev/rkt/internal/lock"
	"rkt.dev/rkt/internal/tail"
	"rkt.dev/rkt/network"
)

// A pod VM is normally not booted: it is resumed from a VM template, a
// snapshot of a VM that booted the same kernel and agent and stopped with
// the agent waiting for its host (hypervisor.Snapshot). Booting costs
// about 0.7 s under TCG and the agent's start another 0.2 s; resuming
// takes QEMU's own start and 30-60 ms more. Kata Containers' VM templating
// and Firecracker's snapshots do the same.
//
// A template serves pods of one machine shape: the stage1 image (kernel
// and agent), the QEMU binary, the memory size, the vCPUs and the number
// of image disks. The first pod of a shape creates it, under a lock, in
// templateRoot (a tmpfs: templates go with a reboot); later pods map its
// RAM copy-on-write. What differs between pods reaches the guest after the
// resume: app images as erofs disks (virtio-fs, whose state QEMU cannot
// save, is not there), and in SetupPod, the host's entropy (every clone
// starts with the template's random state, which the agent reseeds), the
// clock, the hostname and everything else of the pod.
//
// Pods the templates cannot serve boot as before, and --debug says why:
// kind=host volumes (virtio-fs), CNI networks (a template has no NICs),
// the kernel command-line test hooks (which act at boot), a host without
// mkfs.erofs, or EnvTemplate=off.

// EnvTemplate set to "off" makes every kvm pod boot rather than resume a
// template: for comparisons, and to rule templates out when debugging.
const EnvTemplate = "RKT_STAGE1_KVM_TEMPLATE"

// templateRoot holds one directory per template: memory (the guest RAM),
// state (QEMU's device state), placeholder (the disk image the template
// booted with) and used (touched at every resume).
const templateRoot = "/run/rkt/kvm-templates"

// Making a template removes the ones nobody resumed for templateMaxAge (of
// replaced stage1 images, say), and the least recently used beyond
// templateMaxCount: each holds its guest's touched RAM, about 60 MiB, on
// /run's tmpfs.
const (
	templateMaxAge   = 24 * time.Hour
	templateMaxCount = 8
)

// placeholderSize is the size of the template's placeholder disks, and so
// the capacity the guest keeps for each image disk: the erofs image that
// replaces it in a clone is read within its own, smaller, size.
const placeholderSize = 1 << 40

// templatePlan is how a pod resumes a template.
type templatePlan struct {
	dir   string            // the template's directory in templateRoot
	disks []hypervisor.Disk // the pod's image disks, one per share
}

// planTemplate decides whether the pod resumes a template, and returns
// why not otherwise. It builds the erofs images of the pod's image trees
// that are missing.
func (r *podRun) planTemplate(qemuBinary string) (*templatePlan, string) {
	switch {
	case os.Getenv(EnvTemplate) == "off":
		return nil, EnvTemplate + "=off"
	case os.Getenv(EnvExtraKernelParams) != "":
		return nil, EnvExtraKernelParams + " acts at boot"
	case r.nets.Mode == network.ModeCNI:
		return nil, "a template has no network interfaces for CNI networks"
	}
	for _, s := range r.plan.Shares {
		if !s.Image {
			return nil, "kind=host volumes need virtio-fs, which a template cannot have"
		}
	}
	if _, err := exec.LookPath("mkfs.erofs"); err != nil {
		return nil, "no mkfs.erofs to make image disks (apt-get install erofs-utils)"
	}
	key, err := templateKey(r.dir.Stage1TreeStoreID(), qemuBinary, r.plan.Size, len(r.plan.Shares))
	if err != nil {
		return nil, err.Error()
	}
	tp := &templatePlan{dir: filepath.Join(templateRoot, key)}
	for _, s := range r.plan.Shares {
		img, err := imageDisk(r.setupCtx, s.Source)
		if err != nil {
			return nil, err.Error()
		}
		tp.disks = append(tp.disks, hypervisor.Disk{Serial: s.Tag, Path: img})
	}
	return tp, ""
}

// templateKey names the template of a machine shape.
func templateKey(stage1TreeIDFile, qemuBinary string, size vmSize, disks int) (string, error) {
	stage1ID, err := os.ReadFile(stage1TreeIDFile)
	if err != nil {
		return "", fmt.Errorf("reading the stage1 image's tree ID: %w", err)
	}
	bin, err := exec.LookPath(qemuBinary)
	if err != nil {
		return "", err
	}
	fi, err := os.Stat(bin)
	if err != nil {
		return "", err
	}
	// The accelerator decides the CPU model too (qemu.TCGCPU or the
	// host's), which a resumed guest must find unchanged.
	accel, _ := hypervisor.DetectAccel()
	h := sha256.New()
	fmt.Fprintf(h, "stage1 %s\nqemu %s %d %d %s %s\nmemory %d vcpus %d disks %d\n",
		strings.TrimSpace(string(stage1ID)), bin, fi.Size(), fi.ModTime().UnixNano(), hypervisor.MicroVM, accel, size.MemoryMiB, size.VCPUs, disks)
	return hex.EncodeToString(h.Sum(nil))[:32], nil
}

// imageDisk returns the erofs image of an image tree, next to it in the
// tree store, making it first if missing. Trees never change once
// rendered, and the tree store removes the image with its tree.
func imageDisk(ctx context.Context, treeRootfs string) (string, error) {
	img := filepath.Join(filepath.Dir(treeRootfs), "rootfs.erofs")
	if _, err := os.Stat(img); err == nil {
		return img, nil
	}
	tmp := fmt.Sprintf("%s.tmp-%d", img, os.Getpid())
	defer os.Remove(tmp)
	// Uncompressed: nothing to decompress in the guest, where every
	// instruction is emulated under TCG.
	cmd := exec.CommandContext(ctx, "mkfs.erofs", "--quiet", tmp, treeRootfs)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("making the erofs image of %s: %v: %s", treeRootfs, err, bytes.TrimSpace(out))
	}
	if err := os.Rename(tmp, img); err != nil {
		return "", fmt.Errorf("making the erofs image of %s: %w", treeRootfs, err)
	}
	return img, nil
}

// clone returns the Snapshot config of a VM resumed from the template.
func (tp *templatePlan) clone() *hypervisor.Snapshot {
	return &hypervisor.Snapshot{Memory: filepath.Join(tp.dir, "memory"), State: filepath.Join(tp.dir, "state"), Restore: true}
}

// ensure makes the template unless it exists, and returns its lock file,
// held shared: prune and discard, which take it exclusively, leave the
// template alone until the caller's QEMU has opened its files and the
// caller closes the lock. Runs that would make the same template wait for
// the one making it.
func (tp *templatePlan) ensure(ctx context.Context, cfg hypervisor.Config, debugf func(string, ...any)) (*lock.Lock, error) {
	if err := os.MkdirAll(templateRoot, 0o700); err != nil {
		return nil, err
	}
	l, err := openTemplateLock(tp.dir)
	if err != nil {
		return nil, err
	}
	made, err := tp.makeLocked(ctx, l, cfg, debugf)
	if err == nil {
		// Downgrading never waits: this run holds it exclusively.
		err = l.Shared()
	}
	if err != nil {
		l.Close()
		return nil, err
	}
	if made {
		debugf("made VM template %s", tp.dir)
	}
	return l, nil
}

// makeLocked takes the lock exclusively, waiting no longer than ctx, and
// makes the template if it is missing.
func (tp *templatePlan) makeLocked(ctx context.Context, l *lock.Lock, cfg hypervisor.Config, debugf func(string, ...any)) (bool, error) {
	if err := exclusiveWait(ctx, l); err != nil {
		return false, fmt.Errorf("waiting for the VM template another run is making: %w", err)
	}
	if _, err := os.Stat(filepath.Join(tp.dir, "state")); err == nil {
		return false, nil
	}
	pruneTemplates(debugf)
	tmp := tp.dir + ".new"
	os.RemoveAll(tmp)    // left by a run killed while making it
	os.RemoveAll(tp.dir) // a template without its state is no template
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return false, err
	}
	defer os.RemoveAll(tmp)
	if err := makeTemplate(ctx, tmp, cfg); err != nil {
		return false, fmt.Errorf("making a VM template: %w", err)
	}
	return true, os.Rename(tmp, tp.dir)
}

// openTemplateLock opens the lock file of the template in dir, creating
// it. Lock files are never removed: a run waiting on one must keep
// excluding the others.
func openTemplateLock(dir string) (*lock.Lock, error) {
	f, err := os.OpenFile(dir+".lock", os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	f.Close()
	return lock.Open(dir + ".lock")
}

// exclusiveWait takes l exclusively, polling so that it gives up when ctx
// is done (flock itself cannot be interrupted).
func exclusiveWait(ctx context.Context, l *lock.Lock) error {
	for {
		err := l.TryExclusive()
		if !errors.Is(err, lock.ErrLocked) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// makeTemplate boots a VM of the pod's shape with placeholder disks in
// dir, waits until its agent says on the console that it serves the API,
// and saves it. The host does not connect: a connection the agent had not
// seen end before the snapshot would, in every clone, take the clone's
// host connection for its own.
func makeTemplate(ctx context.Context, dir string, cfg hypervisor.Config) error {
	placeholder := filepath.Join(dir, "placeholder")
	f, err := os.Create(placeholder)
	if err != nil {
		return err
	}
	err = f.Truncate(placeholderSize)
	f.Close()
	if err != nil {
		return err
	}
	disks := cfg.Disks
	cfg.Disks = nil
	for _, d := range disks {
		cfg.Disks = append(cfg.Disks, hypervisor.Disk{Serial: d.Serial, Path: placeholder})
	}
	console := tail.New(16 << 10)
	serving := &noticeWriter{notice: []byte("rkt-agent: " + api.ServingNotice), seen: make(chan struct{})}
	// One template serves --debug runs and others alike: its kernel
	// was booted quiet.
	cfg.Console, cfg.Cmdline, cfg.Debug = io.MultiWriter(console, serving), "", false
	cfg.RuntimeDir = filepath.Join(cfg.RuntimeDir, "template")
	cfg.Snapshot = &hypervisor.Snapshot{Memory: filepath.Join(dir, "memory"), State: filepath.Join(dir, "state")}
	vm, err := qemu.Start(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() {
		vm.Stop(context.Background(), true)
		vm.Wait()
	}()
	ended := make(chan struct{})
	go func() { vm.Wait(); close(ended) }()
	select {
	case <-serving.seen:
	case <-ended:
		return fmt.Errorf("the template VM ended before its agent served the API; guest console: %s", console)
	case <-ctx.Done():
		return fmt.Errorf("the template's agent did not start serving the API: %w; guest console: %s", ctx.Err(), console)
	}
	return vm.SaveSnapshot(ctx)
}

// noticeWriter closes seen once notice has been written to it, whatever
// the chunks it came in.
type noticeWriter struct {
	notice []byte
	seen   chan struct{}
	tail   []byte // the last len(notice)-1 bytes seen
	done   bool
}

// Write implements io.Writer; the console is written by one goroutine.
func (w *noticeWriter) Write(p []byte) (int, error) {
	if !w.done {
		buf := append(w.tail, p...)
		if bytes.Contains(buf, w.notice) {
			w.done = true
			close(w.seen)
		} else if keep := len(w.notice) - 1; len(buf) > keep {
			w.tail = append(w.tail[:0], buf[len(buf)-keep:]...)
		} else {
			w.tail = buf
		}
	}
	return len(p), nil
}

// markUsed records that the template was resumed, for pruneTemplates.
func (tp *templatePlan) markUsed() {
	now := time.Now()
	used := filepath.Join(tp.dir, "used")
	if err := os.Chtimes(used, now, now); errors.Is(err, os.ErrNotExist) {
		if f, err := os.Create(used); err == nil {
			f.Close()
		}
	}
}

// discard removes a template a clone could not resume from, so that the
// next pod makes it again; lock is the one ensure returned. It does
// nothing while another run holds the template (a run resuming it
// successfully, or making it anew).
func (tp *templatePlan) discard(l *lock.Lock) {
	if l.TryExclusive() == nil {
		os.RemoveAll(tp.dir)
	}
}

// pruneTemplates makes room for one more template (see templateMaxAge).
// A clone still running from a removed template keeps its RAM file open:
// the memory is freed when the last clone ends.
func pruneTemplates(debugf func(string, ...any)) {
	type template struct {
		dir  string
		used time.Time
	}
	var all []template
	entries, _ := os.ReadDir(templateRoot)
	for _, e := range entries {
		if !e.IsDir() || strings.HasSuffix(e.Name(), ".new") {
			continue
		}
		dir := filepath.Join(templateRoot, e.Name())
		fi, err := os.Stat(filepath.Join(dir, "used"))
		if err != nil {
			fi, err = os.Stat(dir)
		}
		if err == nil {
			all = append(all, template{dir, fi.ModTime()})
		}
	}
	slices.SortFunc(all, func(a, b template) int { return b.used.Compare(a.used) })
	for i, t := range all {
		if i >= templateMaxCount-1 || time.Since(t.used) > templateMaxAge {
			removeUnlessBusy(t.dir, debugf)
		}
	}
}

// removeUnlessBusy removes a template no run holds, under its lock.
func removeUnlessBusy(dir string, debugf func(string, ...any)) {
	l, err := openTemplateLock(dir)
	if err != nil {
		return
	}
	defer l.Close()
	if l.TryExclusive() == nil {
		debugf("removing VM template %s", dir)
		os.RemoveAll(dir)
	}
}

// templateConfig is the VM config shared by a template and its clones.
func templateConfig(cfg hypervisor.Config, tp *templatePlan) hypervisor.Config {
	cfg.Agent = transport.Serial
	cfg.Shares = nil
	cfg.Disks = tp.disks
	return cfg
}
