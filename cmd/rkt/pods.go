package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/appc/spec/schema/types"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"rkt.dev/rkt/internal/tail"
	"rkt.dev/rkt/stage0/pod"
	"rkt.dev/rkt/stage1"
)

func init() {
	register(newStatusCommand)
	register(newCatManifestCommand)
	register(newStopCommand)
	register(newRmCommand)
	register(newGCCommand)
	register(newEnterCommand)
}

// loadPod finds the pod named by a UUID argument or a --uuid-file.
func loadPod(g *globalOptions, cmd *cobra.Command, args []string, uuidFile string) (*pod.Pod, string, error) {
	dir, err := g.dataDir(cmd)
	if err != nil {
		return nil, "", err
	}
	var id string
	switch {
	case uuidFile != "" && len(args) > 0:
		return nil, "", errors.New("give either a UUID or --uuid-file, not both")
	case uuidFile != "":
		b, err := os.ReadFile(uuidFile)
		if err != nil {
			return nil, "", fmt.Errorf("--uuid-file: %w", err)
		}
		id = strings.TrimSpace(string(b))
	case len(args) == 1:
		id = args[0]
	default:
		return nil, "", errors.New("give a pod UUID (see 'rkt list') or --uuid-file")
	}
	p, err := pod.Load(dir, id)
	return p, dir, err
}

// forEachPod applies fn to each pod named by args (or by --uuid-file),
// printing the UUID of each pod it succeeded on, and reports every failure.
func forEachPod(g *globalOptions, cmd *cobra.Command, args []string, uuidFile string, fn func(p *pod.Pod, dataDir string) error) error {
	ids := [][]string{nil}
	if uuidFile == "" && len(args) > 0 {
		ids = ids[:0]
		for _, a := range args {
			ids = append(ids, []string{a})
		}
	}
	var errs []error
	for _, id := range ids {
		p, dir, err := loadPod(g, cmd, id, uuidFile)
		if err == nil {
			err = fn(p, dir)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Printf("%q\n", p.UUID)
	}
	return errors.Join(errs...)
}

// runEntrypoint runs one of the pod's stage1 entrypoints in the pod
// directory, with the terminal attached (stderr to the given writer), and
// returns its exit code.
func runEntrypoint(g *globalOptions, p *pod.Pod, dataDir, annotation string, args []string, stderr io.Writer) (int, error) {
	entry, err := p.Stage1Entrypoint(annotation)
	if err != nil {
		return 0, err
	}
	c := exec.Command(entry, args...)
	c.Dir = p.Path()
	c.Stdin, c.Stdout, c.Stderr = os.Stdin, os.Stdout, stderr
	c.Env = append(os.Environ(), stage1.EnvDataDir+"="+dataDir)
	if g.Debug {
		fmt.Fprintf(os.Stderr, "rkt: running stage1 %s\n", c.String())
	}
	err = c.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), nil
	}
	if err != nil {
		return 0, fmt.Errorf("running stage1 %s: %w", filepath.Base(entry), err)
	}
	return 0, nil
}

// runStage1Task runs a stage1 entrypoint that does one job and reports
// (stop, gc) and returns an error when it fails. The stage1's messages
// become that error, so a failure reads as one line from rkt instead of
// the stage1's own line followed by rkt's "exited with status 254"; they
// are passed through as they come with --debug, and after the entrypoint
// when it succeeds (warnings).
func runStage1Task(g *globalOptions, p *pod.Pod, dataDir, annotation string, args []string) error {
	msgs := tail.New(4 << 10)
	var stderr io.Writer = msgs
	if g.Debug {
		stderr = io.MultiWriter(os.Stderr, msgs)
	}
	code, err := runEntrypoint(g, p, dataDir, annotation, args, stderr)
	if err != nil {
		return err
	}
	said := msgs.String()
	if code == 0 {
		if said != "" && !g.Debug {
			fmt.Fprintln(os.Stderr, said)
		}
		return nil
	}
	if said == "" {
		return fmt.Errorf("stage1 %s exited with status %d", path.Base(annotation), code)
	}
	// Each line is "stage1-FLAVOR: message"; the flavor is rkt's business.
	lines := strings.Split(said, "\n")
	for i, l := range lines {
		if _, msg, ok := strings.Cut(l, ": "); ok && strings.HasPrefix(l, "stage1-") {
			lines[i] = msg
		}
	}
	return errors.New(strings.Join(lines, "\n"))
}

// stage1GC returns the gc hook that runs a pod's stage1 gc entrypoint.
func stage1GC(g *globalOptions, dataDir string) func(*pod.Pod) error {
	return func(p *pod.Pod) error {
		if _, err := p.Stage1Manifest(); err != nil {
			return nil // never got a stage1: nothing of it to release
		}
		return runStage1Task(g, p, dataDir, stage1.AnnotationGC,
			stage1.GCFlags{Debug: g.Debug, LocalConfig: g.LocalConfig, UUID: p.UUID}.Args())
	}
}

func newStatusCommand(g *globalOptions) *cobra.Command {
	var (
		wait     string
		format   string
		uuidFile string
	)
	c := &cobra.Command{
		Use:   "status [--wait[=DURATION]] UUID",
		Short: "Show the status of a pod",
		Long: `Print the pod's status as key=value lines: state, created, started, networks,
pid, exited, and app-NAME=EXITCODE for each app once the pod has exited.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, _, err := loadPod(g, cmd, args, uuidFile)
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("wait") {
				d := time.Duration(0)
				if wait != "" && wait != "0" {
					if d, err = time.ParseDuration(wait); err != nil {
						return fmt.Errorf("--wait: %w", err)
					}
				}
				if err := p.WaitExited(d); err != nil {
					return err
				}
				if p, _, err = loadPod(g, cmd, []string{p.UUID}, ""); err != nil {
					return err
				}
			}
			info := describePod(p)
			switch format {
			case "json", "json-pretty":
				return printJSON(os.Stdout, info, format == "json-pretty")
			case "", "text":
			default:
				return fmt.Errorf("unknown --format %q (want text, json or json-pretty)", format)
			}
			fmt.Printf("state=%s\n", info.State)
			fmt.Printf("created=%s\n", fmtTime(info.CreatedAt))
			fmt.Printf("started=%s\n", fmtTime(info.StartedAt))
			fmt.Printf("networks=%s\n", info.networkString())
			if info.PID != 0 {
				fmt.Printf("pid=%d\n", info.PID)
			}
			fmt.Printf("exited=%t\n", info.exited())
			for _, a := range info.Apps {
				if a.ExitCode != nil {
					fmt.Printf("app-%s=%d\n", a.Name, *a.ExitCode)
				}
			}
			return nil
		},
	}
	c.Flags().StringVar(&wait, "wait", "", "wait for the pod to exit, at most DURATION (e.g. 30s; none means forever)")
	c.Flags().Lookup("wait").NoOptDefVal = "0"
	c.Flags().StringVar(&format, "format", "", "output format: text, json or json-pretty")
	c.Flags().StringVar(&uuidFile, "uuid-file", "", "read the pod UUID from this file")
	return c
}

func newCatManifestCommand(g *globalOptions) *cobra.Command {
	var (
		pretty   bool
		uuidFile string
	)
	c := &cobra.Command{
		Use:   "cat-manifest UUID",
		Short: "Print the pod manifest",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, _, err := loadPod(g, cmd, args, uuidFile)
			if err != nil {
				return err
			}
			pm, err := p.Manifest()
			if err != nil {
				return err
			}
			return printJSON(os.Stdout, pm, pretty)
		},
	}
	c.Flags().BoolVar(&pretty, "pretty-print", true, "indent the JSON")
	c.Flags().StringVar(&uuidFile, "uuid-file", "", "read the pod UUID from this file")
	return c
}

func newStopCommand(g *globalOptions) *cobra.Command {
	var (
		force    bool
		uuidFile string
	)
	c := &cobra.Command{
		Use:   "stop [--force] UUID...",
		Short: "Stop running pods",
		Long:  "Stop asks each pod's apps to exit (SIGTERM); --force kills them at once.",
		RunE: func(cmd *cobra.Command, args []string) error {
			return forEachPod(g, cmd, args, uuidFile, func(p *pod.Pod, dir string) error {
				if p.State() != pod.Running {
					return fmt.Errorf("pod %s is %s, not running", p.UUID, p.State())
				}
				if err := runStage1Task(g, p, dir, stage1.AnnotationStop, stage1.StopFlags{Force: force, UUID: p.UUID}.Args()); err != nil {
					return fmt.Errorf("stopping pod %s: %w", p.UUID, err)
				}
				return nil
			})
		},
	}
	c.Flags().BoolVar(&force, "force", false, "kill the pod's apps instead of asking them to stop")
	c.Flags().StringVar(&uuidFile, "uuid-file", "", "read the pod UUID from this file")
	return c
}

func newRmCommand(g *globalOptions) *cobra.Command {
	var uuidFile string
	c := &cobra.Command{
		Use:   "rm UUID...",
		Short: "Remove exited or prepared pods",
		RunE: func(cmd *cobra.Command, args []string) error {
			return forEachPod(g, cmd, args, uuidFile, func(p *pod.Pod, dir string) error {
				return p.Remove(pod.GCOptions{Stage1GC: stage1GC(g, dir)})
			})
		},
	}
	c.Flags().StringVar(&uuidFile, "uuid-file", "", "read the pod UUID from this file")
	return c
}

func newGCCommand(g *globalOptions) *cobra.Command {
	var (
		grace, expire time.Duration
		markOnly      bool
	)
	c := &cobra.Command{
		Use:   "gc",
		Short: "Garbage-collect exited and abandoned pods",
		Long: `Mark exited pods as garbage and delete those marked longer than the grace
period, releasing everything their stage1 held on the host. Prepared pods
that were never run are deleted after --expire-prepared.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := g.dataDir(cmd)
			if err != nil {
				return err
			}
			return pod.GC(dir, pod.GCOptions{
				GracePeriod: grace, ExpirePrepared: expire, MarkOnly: markOnly,
				Stage1GC: stage1GC(g, dir),
				Log:      func(f string, a ...any) { fmt.Printf(f+"\n", a...) },
			})
		},
	}
	c.Flags().DurationVar(&grace, "grace-period", 30*time.Minute, "how long an exited pod stays before it is deleted")
	c.Flags().DurationVar(&expire, "expire-prepared", 24*time.Hour, "how long a prepared pod may wait to be run")
	c.Flags().BoolVar(&markOnly, "mark-only", false, "only mark exited pods as garbage")
	return c
}

func newEnterCommand(g *globalOptions) *cobra.Command {
	var app string
	c := &cobra.Command{
		Use:   "enter [--app=NAME] UUID [CMD [ARGS...]]",
		Short: "Run a command inside a running pod's app (default: a shell, /bin/bash or /bin/sh)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, dir, err := loadPod(g, cmd, args[:1], "")
			if err != nil {
				return err
			}
			if p.State() != pod.Running {
				return fmt.Errorf("pod %s is %s; only running pods can be entered", p.UUID, p.State())
			}
			names := p.AppNames()
			if app == "" {
				if len(names) != 1 {
					return fmt.Errorf("pod %s has %d apps; choose one with --app", p.UUID, len(names))
				}
				app = names[0].String()
			} else if !slices.ContainsFunc(names, func(n types.ACName) bool { return n.String() == app }) {
				return fmt.Errorf("pod %s has no app %q; its apps: %v", p.UUID, app, names)
			}
			pid, err := p.Dir().ReadPID()
			if err != nil {
				return fmt.Errorf("pod %s has not started yet: %w", p.UUID, err)
			}
			command := args[1:]
			if len(command) == 0 {
				command = []string{defaultShell(p.Dir(), app)}
			}
			code, err := runEntrypoint(g, p, dir, stage1.AnnotationEnter,
				stage1.EnterFlags{PID: pid, AppName: app, TTY: term.IsTerminal(int(os.Stdin.Fd())), Cmd: command}.Args(), os.Stderr)
			if err != nil {
				return err
			}
			if code != 0 {
				return exitCodeError{code}
			}
			return nil
		},
	}
	c.Flags().SetInterspersed(false)
	c.Flags().StringVar(&app, "app", "", "the app to enter (needed when the pod has several)")
	return c
}

// defaultShell is what rkt enter runs when given no command: /bin/bash, as
// rkt did, unless the app's image has no bash but a /bin/sh (busybox,
// Alpine and distroless-like images), judged from the app's rendered image.
func defaultShell(dir stage1.PodDir, app string) string {
	if root, err := dir.AppTreeRootfs(types.ACName(app)); err == nil {
		_, bash := os.Lstat(filepath.Join(root, "bin", "bash"))
		_, sh := os.Lstat(filepath.Join(root, "bin", "sh"))
		if bash != nil && sh == nil {
			return "/bin/sh"
		}
	}
	return "/bin/bash"
}
