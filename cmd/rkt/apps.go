package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/appc/spec/schema/types"
	"github.com/spf13/pflag"

	"rkt.dev/rkt/stage0/run"
)

// appFlagsUsage documents the per-app flags for --help.
const appFlagsUsage = `Per-app flags follow the image they apply to:
      --name=NAME                  set the app's name (default: derived from the image name)
      --exec=PATH                  override the image's executable
      --working-dir=DIR            override the working directory
      --user=USER, --group=GROUP   run as this user/group (number or name from the image's /etc/passwd)
      --supplementary-gids=N,..    supplementary group IDs
      --environment=K=V            set an environment variable for this app (repeatable)
      --mount=volume=V,target=P    mount the pod volume V at P
      --readonly-rootfs            make the app's root filesystem read-only
      --memory=SIZE                memory limit: 64M or 64m is 64 MiB, as for docker
                                   run; 64Mi, 1Gi and plain bytes work too
      --cpu=QUANTITY               CPU limit in cores (500m, 2)
      --cpu-shares=N               relative CPU weight (2..262144; 1024 is the default)
      --caps-retain=CAP,..         keep only these capabilities
      --caps-remove=CAP,..         drop these from the default capability set
      --seccomp=mode=retain|remove[,errno=E],SYSCALL,..
                                   system call filter (replaces the default profile)
      --oom-score-adj=N            the app's OOM score adjustment (-1000..1000)
Arguments for an app follow "--" and end with "---":
      rkt run IMAGE1 --exec=/bin/x -- arg1 arg2 --- IMAGE2 -- arg`

// parseApps splits the positional part of `rkt run`/`rkt prepare` into
// apps: IMAGE [per-app flags] [-- args [---]] IMAGE ... Flags apply to the
// image before them, as in the original rkt, so each app can differ.
func parseApps(args []string) ([]run.AppOptions, error) {
	var apps []run.AppOptions
	for len(args) > 0 {
		if strings.HasPrefix(args[0], "-") {
			return nil, fmt.Errorf("flag %s must follow an image (pod flags go before the first image)", args[0])
		}
		a := run.AppOptions{Image: args[0]}
		args = args[1:]
		// This app's flags end at "--" or at the next image.
		end := 0
		for end < len(args) && args[end] != "--" && (strings.HasPrefix(args[end], "-") || isFlagValue(args, end)) {
			end++
		}
		if err := parseAppFlags(&a, args[:end]); err != nil {
			return nil, fmt.Errorf("image %s: %w", a.Image, err)
		}
		args = args[end:]
		if len(args) > 0 && args[0] == "--" {
			a.HasArgs = true
			args = args[1:]
			for len(args) > 0 && args[0] != "---" {
				a.Args = append(a.Args, args[0])
				args = args[1:]
			}
			if len(args) > 0 {
				args = args[1:] // the "---"
			}
		}
		apps = append(apps, a)
	}
	return apps, nil
}

// appFlagsWithValue are the per-app flags that take a separate value when
// written without "=".
var appFlagsWithValue = map[string]bool{"--name": true, "--exec": true, "--working-dir": true, "--user": true,
	"--group": true, "--supplementary-gids": true, "--environment": true, "--mount": true,
	"--memory": true, "--cpu": true, "--cpu-shares": true, "--caps-retain": true, "--caps-remove": true,
	"--seccomp": true, "--oom-score-adj": true}

// isFlagValue reports whether args[i] is the value of the flag before it
// ("--exec /bin/sh").
func isFlagValue(args []string, i int) bool {
	return i > 0 && appFlagsWithValue[args[i-1]]
}

func parseAppFlags(a *run.AppOptions, args []string) error {
	fs := pflag.NewFlagSet("app", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&a.Name, "name", "", "")
	fs.StringVar(&a.Exec, "exec", "", "")
	fs.StringVar(&a.WorkingDir, "working-dir", "", "")
	fs.StringVar(&a.User, "user", "", "")
	fs.StringVar(&a.Group, "group", "", "")
	fs.BoolVar(&a.ReadOnlyRootFS, "readonly-rootfs", false, "")
	gids := fs.String("supplementary-gids", "", "")
	env := fs.StringArray("environment", nil, "")
	mounts := fs.StringArray("mount", nil, "")
	iso := &a.Isolators
	fs.StringVar(&iso.Memory, "memory", "", "")
	fs.StringVar(&iso.CPU, "cpu", "", "")
	fs.StringVar(&iso.Seccomp, "seccomp", "", "")
	capsRetain := fs.StringSlice("caps-retain", nil, "")
	capsRemove := fs.StringSlice("caps-remove", nil, "")
	cpuShares := fs.Int("cpu-shares", 0, "")
	oomScoreAdj := fs.Int("oom-score-adj", 0, "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	// Only flags given override the image: an unset one must not replace
	// the image's isolator with a zero value.
	if fs.Changed("caps-retain") {
		iso.CapsRetain = append([]string{}, *capsRetain...)
	}
	if fs.Changed("caps-remove") {
		iso.CapsRemove = append([]string{}, *capsRemove...)
	}
	if fs.Changed("cpu-shares") {
		iso.CPUShares = cpuShares
	}
	if fs.Changed("oom-score-adj") {
		iso.OOMScoreAdj = oomScoreAdj
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *gids != "" {
		for _, g := range strings.Split(*gids, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(g))
			if err != nil || n < 0 {
				return fmt.Errorf("--supplementary-gids: %q is not a group ID", g)
			}
			a.SupplementaryGIDs = append(a.SupplementaryGIDs, n)
		}
	}
	for _, kv := range *env {
		ev, err := parseEnv(kv)
		if err != nil {
			return fmt.Errorf("--environment: %w", err)
		}
		a.Env = append(a.Env, ev)
	}
	for _, m := range *mounts {
		mo, err := parseMount(m)
		if err != nil {
			return err
		}
		a.Mounts = append(a.Mounts, mo)
	}
	return nil
}

// parseEnv parses NAME=VALUE.
func parseEnv(kv string) (types.EnvironmentVariable, error) {
	k, v, ok := strings.Cut(kv, "=")
	if !ok || k == "" {
		return types.EnvironmentVariable{}, fmt.Errorf("%q is not NAME=VALUE", kv)
	}
	return types.EnvironmentVariable{Name: k, Value: v}, nil
}

// parseMount parses volume=NAME,target=PATH.
func parseMount(s string) (run.MountOption, error) {
	var m run.MountOption
	for _, kv := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "volume":
			if err := m.Volume.Set(v); err != nil {
				return m, fmt.Errorf("--mount %q: invalid volume name: %w", s, err)
			}
		case "target":
			m.Target = v
		default:
			return m, fmt.Errorf("--mount %q: unknown key %q (want volume=NAME,target=PATH)", s, k)
		}
	}
	if m.Volume == "" || m.Target == "" {
		return m, fmt.Errorf("--mount %q: want volume=NAME,target=PATH", s)
	}
	return m, nil
}
