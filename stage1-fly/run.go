package main

import (
	"errors"
	"fmt"
	"os"

	"rkt.dev/rkt/stage1"
	"rkt.dev/rkt/stage1/apprun"
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
	if flags.PrivateUsers != "" {
		return 0, errors.New("the fly stage1 runs apps as the host's users; --private-users needs --stage1-name=nspawn")
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
	if err := appsEtc(dir); err != nil {
		return 0, err
	}
	// fly runs privileged host software: it applies the isolators an
	// image or the user asked for, and no defaults. Cgroups go below the
	// caller's, in one directory per pod.
	opts := apprun.IsolatorOptionsFromFlags(flags)
	opts.CgroupParent = "rkt-" + flags.UUID
	apps := make([]supervisor.App, len(p.Apps))
	for i, a := range p.Apps {
		apps[i] = apprun.SupervisorApp(p, a, supervisor.HostSystemMounts)
		if apps[i].Isolators, err = apprun.SupervisorIsolators(a.Name, a.Isolators, opts); err != nil {
			return 0, err
		}
	}
	sup, err := supervisor.New()
	if err != nil {
		return 0, err
	}
	return apprun.Run(p, sup, apps, flags.Interactive, func(i int, proc *supervisor.Process) error {
		if i > 0 {
			return nil
		}
		return dir.WritePID(proc.Pid())
	})
}

// appsEtc gives the apps the DNS settings and hosts entries the user asked
// for (--dns…, --hosts-entry). Without them a fly app keeps its image's
// files: it shares the host's network, not a pod network.
func appsEtc(dir stage1.PodDir) error {
	resolv, err := stage1.PodResolvConf(dir, "")
	if err != nil {
		return err
	}
	hosts := ""
	if _, err := os.Stat(dir.Hosts()); err == nil {
		name, err := os.Hostname()
		if err != nil {
			return err
		}
		if hosts, err = stage1.PodHosts(dir, name, nil); err != nil {
			return err
		}
	}
	return dir.WriteAppsEtc(resolv, hosts)
}
