package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"rkt.dev/rkt/internal/procstat"
	"rkt.dev/rkt/network"
	"rkt.dev/rkt/stage1"
	"rkt.dev/rkt/stage1/supervisor"
)

// nspawnPackage is the Debian package that ships systemd-nspawn.
const nspawnPackage = "systemd-container"

// runPod is the run entrypoint, on the host: it prepares the container's
// root and the pod's cgroup, starts systemd-nspawn with this binary as the
// container's PID 1, records that PID 1 (the process enter and stop
// target), forwards termination signals to it and exits with its exit code,
// which is the pod's.
func runPod(args []string) (int, error) {
	flags, err := stage1.ParseRunFlags(args)
	if err != nil {
		return 0, err
	}
	nspawn, err := exec.LookPath("systemd-nspawn")
	if err != nil {
		return 0, fmt.Errorf("systemd-nspawn is not installed; install the Debian package %s (apt-get install %s)", nspawnPackage, nspawnPackage)
	}
	wd, err := os.Getwd()
	if err != nil {
		return 0, err
	}
	dir := stage1.PodDir(wd)
	p, err := stage1.LoadPod(dir, flags.UUID)
	if err != nil {
		return 0, err
	}
	self, err := os.Executable()
	if err != nil {
		return 0, fmt.Errorf("finding the stage1 binary: %w", err)
	}
	var users *userRange
	if flags.PrivateUsers != "" {
		r, err := parsePrivateUsers(flags.PrivateUsers, flags.UUID)
		if err != nil {
			return 0, err
		}
		users = &r
	}
	argv, err := nspawnArgs(flags, dir, p, self, users)
	if err != nil {
		return 0, err
	}
	if err := setupNetwork(flags, dir, p); err != nil {
		return 0, err
	}
	if err := prepareRoot(dir); err != nil {
		return 0, err
	}
	if users != nil {
		if err := users.prepare(dir, p); err != nil {
			return 0, err
		}
	}
	cg, err := createPodCgroup(dir, flags.UUID, users)
	if err != nil {
		return 0, err
	}
	cmd := exec.Command(nspawn, argv...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	filter := &dropLine{w: os.Stderr, prefix: []byte(propagateNoise)}
	defer filter.flush()
	cmd.Stderr = filter
	// nspawn's own seccomp filter would stack under the supervisor's and
	// defeat --insecure-options=seccomp: the supervisor's is the pod's.
	cmd.Env = append(os.Environ(), "SYSTEMD_SECCOMP=0")
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	if cg.unified != "" {
		fd, err := unix.Open(cg.unified, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return 0, fmt.Errorf("opening the pod's cgroup: %w", err)
		}
		defer unix.Close(fd)
		cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, fd
	}
	sigc := make(chan os.Signal, 4)
	supervisor.NotifyForwarded(sigc)
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("starting systemd-nspawn: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	pid1 := 0
	for pid1 == 0 {
		select {
		case err := <-exited:
			return nspawnExit(err)
		case <-time.After(2 * time.Millisecond):
			pid1 = containerInit(cmd.Process.Pid)
		}
	}
	if err := dir.WritePID(pid1); err != nil {
		cmd.Process.Kill()
		<-exited
		return 0, err
	}
	for {
		select {
		case err := <-exited:
			return nspawnExit(err)
		case sig := <-sigc:
			// PID 1 forwards it to every app and exits once they have.
			syscall.Kill(pid1, sig.(syscall.Signal))
		}
	}
}

// nspawnExit turns systemd-nspawn's end into the pod's exit code:
// systemd-nspawn exits with its PID 1's code.
func nspawnExit(err error) (int, error) {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return ee.ExitCode(), nil
	}
	if err != nil {
		return 0, fmt.Errorf("systemd-nspawn: %w", err)
	}
	return 0, nil
}

// containerInit returns the container's PID 1 as the host sees it: the
// child of systemd-nspawn that lives in another PID namespace (nspawn's
// short-lived intermediate child does not), or 0 while there is none yet.
func containerInit(nspawn int) int {
	own, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return 0
	}
	for _, pid := range procstat.Children(nspawn) {
		ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
		if err == nil && ns != own {
			return pid
		}
	}
	return 0
}

// nspawnArgs builds systemd-nspawn's command line; users is the pod's uid
// range, nil without a user namespace.
func nspawnArgs(flags stage1.RunFlags, dir stage1.PodDir, p *stage1.Pod, self string, users *userRange) ([]string, error) {
	// pipe hands nspawn's own stdio to PID 1, so the apps' output
	// reaches rkt's stdout and stderr unchanged; an interactive pod on a
	// terminal gets a pseudo-terminal instead (autopipe).
	hostname, console := flags.Hostname, "pipe"
	if hostname == "" {
		hostname = "rkt-" + flags.UUID
	}
	if flags.Interactive {
		console = "autopipe"
	}
	a := []string{
		"--quiet", "--register=no", "--keep-unit",
		"--directory=" + containerRoot(dir),
		"--machine=rkt-" + flags.UUID,
		"--hostname=" + hostname,
		// The supervisor is PID 1 and drops every app to its own set;
		// it needs them all to hand out any.
		"--capability=all",
		"--kill-signal=SIGTERM",
		"--console=" + console,
		"--resolv-conf=off", "--timezone=off", "--link-journal=no",
		"--setenv=" + stage1.EnvDataDir + "=" + insideDataDir,
		"--bind=" + dir.Path() + ":" + insidePodDir,
		"--bind-ro=" + filepath.Join(dir.DataDir(), "tree") + ":" + insideTree,
		"--bind-ro=" + self + ":" + insideBinary,
	}
	nets, err := network.ParseNets(flags.Nets)
	if err != nil {
		return nil, err
	}
	switch nets.Mode {
	case network.ModeHost:
	case network.ModeNone:
		a = append(a, "--private-network") // loopback only
	case network.ModeCNI:
		// setupNetwork makes the namespace and joins it to the pod's
		// CNI networks before nspawn starts.
		a = append(a, "--network-namespace-path="+dir.Netns())
	}
	if users != nil {
		a = append(a, users.nspawnArgs()...)
	}
	seen := map[string]bool{}
	for _, app := range p.Apps {
		for _, m := range app.Mounts {
			if m.Kind != "host" || seen[m.Volume.String()] {
				continue
			}
			seen[m.Volume.String()] = true
			opt := "--bind="
			if m.ReadOnly {
				opt = "--bind-ro="
			}
			a = append(a, opt+m.Source+":"+filepath.Join(insideVolumes, m.Volume.String()))
		}
	}
	return append(a, insideBinary, "pod-init"), nil
}

// prepareRoot creates the container's root directory: empty but for the
// /usr systemd-nspawn insists on.
func prepareRoot(dir stage1.PodDir) error {
	root := containerRoot(dir)
	if err := os.MkdirAll(filepath.Join(root, "usr"), 0o755); err != nil {
		return fmt.Errorf("creating the container root: %w", err)
	}
	return nil
}

// propagateNoise starts the line systemd-nspawn 252 prints at every exit
// on hosts whose /run is not a tmpfs, about a directory it made for
// `machinectl bind` (which --register=no never uses).
const propagateNoise = `Attempted to remove disk file system under "/run/systemd/nspawn/propagate/`

// dropLine copies whole lines to w, except those starting with prefix.
type dropLine struct {
	w      io.Writer
	prefix []byte
	buf    []byte
}

// Write implements io.Writer.
func (d *dropLine) Write(b []byte) (int, error) {
	d.buf = append(d.buf, b...)
	for {
		i := bytes.IndexByte(d.buf, '\n')
		if i < 0 {
			return len(b), nil
		}
		line := d.buf[:i+1]
		d.buf = d.buf[i+1:]
		if bytes.HasPrefix(line, d.prefix) {
			continue
		}
		if _, err := d.w.Write(line); err != nil {
			return len(b), err
		}
	}
}

// flush writes a last line that had no newline.
func (d *dropLine) flush() {
	if len(d.buf) > 0 && !bytes.HasPrefix(d.buf, d.prefix) {
		d.w.Write(d.buf)
	}
	d.buf = nil
}

// setupNetwork joins the pod to its CNI networks (in a namespace nspawn
// then uses) and writes the /etc/resolv.conf and /etc/hosts the apps get.
// Teardown is gc's job, so `rkt status` shows the addresses after exit.
func setupNetwork(flags stage1.RunFlags, dir stage1.PodDir, p *stage1.Pod) error {
	nets, err := network.ParseNets(flags.Nets)
	if err != nil {
		return err
	}
	hostname := flags.Hostname
	if hostname == "" {
		hostname = "rkt-" + flags.UUID
	}
	var ips []string
	fromCNI := ""
	if nets.Mode == network.ModeCNI {
		opts, err := network.PodOptions(p, flags)
		if err != nil {
			return err
		}
		info, err := network.Setup(context.Background(), network.PodInfo(dir, flags.UUID), nets, opts)
		if err != nil {
			return err
		}
		for _, a := range info.Attachments {
			ips = append(ips, a.IPv4())
		}
		fromCNI = network.ResolvConf(info)
	}
	resolv, err := stage1.PodResolvConf(dir, fromCNI)
	if err != nil {
		return err
	}
	hosts, err := stage1.PodHosts(dir, hostname, ips)
	if err != nil {
		return err
	}
	return dir.WriteAppsEtc(resolv, hosts)
}
