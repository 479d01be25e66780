package apprun

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"

	"rkt.dev/rkt/stage1"
	"rkt.dev/rkt/stage1/supervisor"
)

// SupervisorApp describes the app a of pod p for a host-side supervisor: its
// writable root is an overlay of the tree store rootfs at PodDir.AppRootfs,
// and volumes are bind mounts of their host paths.
func SupervisorApp(p *stage1.Pod, a stage1.App, system supervisor.SystemMounts) supervisor.App {
	sa := supervisor.App{
		Name:              a.Name.String(),
		Root:              p.Dir.AppRootfs(a.Name),
		Lower:             a.TreeRootfs,
		Upper:             p.Dir.AppUpper(a.Name),
		Work:              p.Dir.AppWork(a.Name),
		Exec:              a.Exec,
		Env:               a.Env,
		User:              a.User,
		Group:             a.Group,
		SupplementaryGIDs: a.SupplementaryGIDs,
		WorkDir:           a.WorkDir,
		System:            system,
		ReadOnlyRoot:      a.ReadOnlyRootFS,
	}
	for _, m := range a.Mounts {
		sa.Mounts = append(sa.Mounts, supervisor.Mount{Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly, CopyUp: m.FromImage})
	}
	// The pod-wide /etc files the stage1 wrote (DNS, hosts), over the
	// image's own.
	for _, name := range p.Dir.AppsEtcFiles() {
		sa.Mounts = append(sa.Mounts, supervisor.Mount{Source: filepath.Join(p.Dir.AppsEtc(), name), Target: "/etc/" + name, ReadOnly: true})
	}
	return sa
}

// Run is the run loop every host-side flavor shares (fly on the host,
// nspawn as the pod's PID 1): it starts apps[i], the supervisor form of
// p.Apps[i], sends each app's output to this process's stdout and stderr
// (prefixed by the app's name when there are several) and to its log file,
// forwards supervisor.ForwardedSignals to every app, records each exit status
// and returns the pod's exit code.
//
// started is called with each app's process once it runs; a flavor records
// there what enter and stop need. If an app cannot be started, the ones
// already running are killed and the error returned.
func Run(p *stage1.Pod, sup *supervisor.Supervisor, apps []supervisor.App, interactive bool, started func(i int, proc *supervisor.Process) error) (int, error) {
	if err := os.MkdirAll(p.Dir.LogDir(), 0o755); err != nil {
		return 0, err
	}
	// Signals to the pod's parent process (rkt run) go to the apps, so
	// stopping the pod with Ctrl-C or a supervisor's SIGTERM behaves as
	// for a single process.
	sigc := make(chan os.Signal, 4)
	supervisor.NotifyForwarded(sigc)
	defer signal.Stop(sigc)
	if os.Getpid() == 1 {
		// The pod's PID 1 (nspawn): its apps may signal it.
		supervisor.DropSignals(supervisor.PID1DroppedSignals...)
	}

	procs := make([]*supervisor.Process, 0, len(apps))
	killAll := func() {
		for _, pr := range procs {
			pr.Signal(syscall.SIGKILL)
			pr.Wait()
		}
	}
	var logs []*os.File
	defer func() {
		for _, l := range logs {
			l.Close()
		}
	}()
	var prefixed []*stage1.PrefixWriter // flushed once the apps are done
	for i, sa := range apps {
		name := p.Apps[i].Name
		logf, err := os.Create(p.Dir.LogFile(name))
		if err != nil {
			killAll()
			return 0, err
		}
		logs = append(logs, logf)
		sa.Stdout, prefixed = outputWriter(os.Stdout, logf, name.String(), len(apps), prefixed)
		sa.Stderr, prefixed = outputWriter(os.Stderr, logf, name.String(), len(apps), prefixed)
		if interactive {
			// The app owns the terminal: hand it the real descriptors
			// so a TTY stays a TTY.
			sa.Stdin, sa.Stdout, sa.Stderr = os.Stdin, os.Stdout, os.Stderr
		}
		proc, err := sup.Start(sa)
		if err == nil {
			procs = append(procs, proc)
			err = started(i, proc)
		}
		if err != nil {
			killAll()
			return 0, err
		}
	}
	go func() {
		for sig := range sigc {
			for _, pr := range procs {
				pr.Signal(sig.(syscall.Signal))
			}
		}
	}()
	codes := make([]int, len(procs))
	for i, pr := range procs {
		codes[i] = pr.Wait().Code
		if err := p.Dir.WriteExitStatus(p.Apps[i].Name, codes[i]); err != nil {
			fmt.Fprintf(os.Stderr, "stage1: %v\n", err)
		}
	}
	// An app's last line may lack its newline; it must not be lost.
	for _, pw := range prefixed {
		pw.Flush()
	}
	return stage1.ExitCode(codes), nil
}

// outputWriter sends an app's output to the terminal (prefixed by the app's
// name when the pod has several apps) and to its log file. A prefixing
// writer is appended to pws, to be flushed when the app is done.
func outputWriter(term, log *os.File, app string, apps int, pws []*stage1.PrefixWriter) (io.Writer, []*stage1.PrefixWriter) {
	if apps == 1 {
		return io.MultiWriter(term, log), pws
	}
	pw := stage1.NewPrefixWriter(term, app+": ")
	return io.MultiWriter(pw, log), append(pws, pw)
}

// Enter runs cmd in the root of pod p's app called appName, whose process is
// pid, with the app's environment, as root (whoever enters is debugging the
// pod, not being the app), and returns cmd's exit code. It is the enter
// entrypoint's work once it is in the pod's namespaces.
func Enter(p *stage1.Pod, pid int, appName string, cmd []string) (int, error) {
	i := slices.IndexFunc(p.Apps, func(a stage1.App) bool { return a.Name.String() == appName })
	if i < 0 {
		return 0, fmt.Errorf("pod has no app named %q", appName)
	}
	sup, err := supervisor.New()
	if err != nil {
		return 0, err
	}
	proc, err := sup.Enter(pid, supervisor.App{
		Name: appName, Exec: cmd, Env: p.Apps[i].Env, WorkDir: "/",
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
	})
	if err != nil {
		return 0, err
	}
	return proc.Wait().Code, nil
}
