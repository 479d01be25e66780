package stage1

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"syscall"

	"rkt.dev/rkt/stage1/supervisor"
)

// RunApps is the run loop every host-side flavor shares (fly on the host,
// nspawn as the pod's PID 1): it starts apps[i], the supervisor form of
// p.Apps[i], sends each app's output to this process's stdout and stderr
// (prefixed by the app's name when there are several) and to its log file,
// forwards SIGTERM, SIGINT and SIGHUP to every app, records each exit status
// and returns the pod's exit code.
//
// started is called with each app's process once it runs; a flavor records
// there what enter and stop need. If an app cannot be started, the ones
// already running are killed and the error returned.
func (p *Pod) RunApps(sup *supervisor.Supervisor, apps []supervisor.App, interactive bool, started func(i int, proc *supervisor.Process) error) (int, error) {
	if err := os.MkdirAll(p.Dir.LogDir(), 0o755); err != nil {
		return 0, err
	}
	// Signals to the pod's parent process (rkt run) go to the apps, so
	// stopping the pod with Ctrl-C or a supervisor's SIGTERM behaves as
	// for a single process.
	sigc := make(chan os.Signal, 4)
	signal.Notify(sigc, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigc)

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
	var prefixed []*PrefixWriter // flushed once the apps are done
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
	return ExitCode(codes), nil
}

// outputWriter sends an app's output to the terminal (prefixed by the app's
// name when the pod has several apps) and to its log file. A prefixing
// writer is appended to pws, to be flushed when the app is done.
func outputWriter(term, log *os.File, app string, apps int, pws []*PrefixWriter) (io.Writer, []*PrefixWriter) {
	if apps == 1 {
		return io.MultiWriter(term, log), pws
	}
	pw := NewPrefixWriter(term, app+": ")
	return io.MultiWriter(pw, log), append(pws, pw)
}

// Enter runs cmd in the root of the app called appName, whose process is
// pid, with the app's environment, as root (whoever enters is debugging the
// pod, not being the app), and returns cmd's exit code. It is the enter
// entrypoint's work once it is in the pod's namespaces.
func (p *Pod) Enter(pid int, appName string, cmd []string) (int, error) {
	i := slices.IndexFunc(p.Apps, func(a App) bool { return a.Name.String() == appName })
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
