package run

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"

	"rkt.dev/rkt/stage0/pod"
	"rkt.dev/rkt/stage1"
)

// execStage1 moves the pod to run/ and replaces rkt with the stage1 run
// entrypoint, in the pod directory, handing over the pod lock. From here on
// the process that was `rkt run` is the pod's stage1, so whatever supervises
// rkt (a systemd unit, a shell, `timeout`) supervises the pod.
func (s *state) execStage1() error {
	if err := s.pod.ToRun(); err != nil {
		return err
	}
	dir := s.pod.Dir()
	entry, err := pod.Entrypoint(dir, s.stage1Manifest, stage1.AnnotationRun)
	if err != nil {
		return err
	}
	if _, err := os.Stat(entry); err != nil {
		return fmt.Errorf("stage1 run entrypoint: %w", err)
	}
	if err := s.saveUUID(); err != nil {
		return err
	}
	s.markUsed()
	flags := stage1.RunFlags{
		UUID:        s.pod.UUID,
		Debug:       s.opts.Debug,
		Nets:        s.opts.Net,
		Interactive: s.opts.Interactive,
		Hostname:    s.opts.Hostname,
		LocalConfig: s.opts.LocalConfig,

		PrivateUsers:        s.opts.PrivateUsers,
		DisableCapabilities: s.opts.InsecureCapabilities,
		DisablePaths:        s.opts.InsecurePaths,
		DisableSeccomp:      s.opts.InsecureSeccomp,
	}
	if flags.Hostname == "" {
		flags.Hostname = "rkt-" + s.pod.UUID
	}
	if err := flags.Save(dir); err != nil {
		return err
	}
	lockFD := int(s.pod.LockFile().Fd())
	// The lock must survive exec: clear close-on-exec on its descriptor.
	if _, err := unix.FcntlInt(uintptr(lockFD), unix.F_SETFD, 0); err != nil {
		return fmt.Errorf("passing the pod lock to stage1: %w", err)
	}
	if err := os.Chdir(dir.Path()); err != nil {
		return fmt.Errorf("entering pod directory: %w", err)
	}
	env := append(os.Environ(), stage1.EnvLockFD+"="+strconv.Itoa(lockFD), stage1.EnvDataDir+"="+s.opts.DataDir)
	argv := append([]string{entry}, flags.Args()...)
	s.logf("executing stage1: %v", argv)
	if err := unix.Exec(entry, argv, env); err != nil {
		return fmt.Errorf("executing stage1 %s: %w", entry, err)
	}
	return nil
}
