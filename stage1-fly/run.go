package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"rkt.dev/rkt/stage1"
	"rkt.dev/rkt/stage1/supervisor"
)

// runPod is the run entrypoint: stage0 has chdir'ed to the pod directory and
// passes the pod lock in RKT_LOCK_FD, which this process keeps open until it
// exits.
func runPod(args []string) (int, error) {
	flags, err := stage1.ParseRunFlags(args)
	if err != nil {
		return 0, err
	}
	if n := flags.Nets; n != "" && n != "host" && n != "default" {
		// fly always shares the host's network; asking for anything else
		// would silently not get it.
		return 0, fmt.Errorf("the fly stage1 always uses the host network; --net=%s is not possible (use --net=host)", n)
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
	if err := os.MkdirAll(dir.LogDir(), 0o755); err != nil {
		return 0, err
	}
	sup, err := supervisor.New()
	if err != nil {
		return 0, err
	}
	// Signals to the pod's parent process (rkt run) go to the apps, so
	// stopping the pod with Ctrl-C or a supervisor's SIGTERM behaves as for
	// a single process.
	sigc := make(chan os.Signal, 4)
	signal.Notify(sigc, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)

	procs := make([]*supervisor.Process, 0, len(p.Apps))
	var logs []*os.File
	var prefixed []*stage1.PrefixWriter // flushed once the apps are done
	for i, a := range p.Apps {
		sa := p.SupervisorApp(a, supervisor.HostSystemMounts)
		logf, err := os.Create(dir.LogFile(a.Name))
		if err != nil {
			return 0, err
		}
		logs = append(logs, logf)
		var pws []*stage1.PrefixWriter
		sa.Stdout, pws = outputWriter(os.Stdout, logf, a.Name.String(), len(p.Apps), pws)
		sa.Stderr, pws = outputWriter(os.Stderr, logf, a.Name.String(), len(p.Apps), pws)
		prefixed = append(prefixed, pws...)
		if flags.Interactive {
			// The app owns the terminal: hand it the real descriptors so
			// a TTY stays a TTY.
			sa.Stdin, sa.Stdout, sa.Stderr = os.Stdin, os.Stdout, os.Stderr
		}
		proc, err := sup.Start(sa)
		if err != nil {
			for _, pr := range procs {
				pr.Signal(syscall.SIGKILL)
				pr.Wait()
			}
			return 0, err
		}
		procs = append(procs, proc)
		if i == 0 {
			if err := dir.WritePID(proc.Pid()); err != nil {
				return 0, err
			}
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
		st := pr.Wait()
		codes[i] = st.Code
		if err := dir.WriteExitStatus(p.Apps[i].Name, st.Code); err != nil {
			fmt.Fprintf(os.Stderr, "stage1-fly: %v\n", err)
		}
	}
	// An app's last line may lack its newline; it must not be lost.
	for _, pw := range prefixed {
		pw.Flush()
	}
	for _, l := range logs {
		l.Close()
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
