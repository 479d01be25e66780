package main

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"rkt.dev/rkt/stage0/config"
)

// globalOptions are the flags every rkt command accepts.
type globalOptions struct {
	Debug           bool
	Dir             string
	LocalConfig     string
	SystemConfig    string
	UserConfig      string
	InsecureOptions []string
	TrustKeysHTTPS  bool
}

// insecure reports whether --insecure-options contains opt (or "all", or the
// matching "all-fetch"/"all-run" group).
func (g *globalOptions) insecure(opt string) bool {
	fetch := map[string]bool{"image": true, "tls": true, "http": true, "pubkey": true, "ondisk": true}
	runOpts := map[string]bool{"capabilities": true, "paths": true, "seccomp": true}
	for _, o := range g.InsecureOptions {
		switch {
		case o == opt, o == "all":
			return true
		case o == "all-fetch" && fetch[opt], o == "all-run" && runOpts[opt]:
			return true
		}
	}
	return false
}

// validInsecureOptions are the values rkt has always accepted.
var validInsecureOptions = []string{"none", "image", "tls", "ondisk", "http", "pubkey",
	"capabilities", "paths", "seccomp", "all-fetch", "all-run", "all"}

func (g *globalOptions) validate() error {
	for _, o := range g.InsecureOptions {
		ok := false
		for _, v := range validInsecureOptions {
			ok = ok || o == v
		}
		if !ok {
			return fmt.Errorf("unknown --insecure-options value %q (valid: %s)", o, strings.Join(validInsecureOptions, ", "))
		}
	}
	return nil
}

// config loads the merged configuration from the system, local and user dirs.
func (g *globalOptions) config() (*config.Config, error) {
	return config.Load(config.Dirs{System: g.SystemConfig, Local: g.LocalConfig, User: g.UserConfig})
}

// dataDir is --dir, or the paths.d configuration, or the default, as an
// absolute path: stage1 runs in the pod directory and must still find it.
func (g *globalOptions) dataDir(cmd *cobra.Command) (string, error) {
	dir := g.Dir
	if !cmd.Flags().Changed("dir") {
		cfg, err := g.config()
		if err != nil {
			return "", err
		}
		if cfg.Paths.Data != "" {
			dir = cfg.Paths.Data
		}
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("data directory %s: %w", dir, err)
	}
	return abs, nil
}

func newRootCommand() *cobra.Command {
	g := &globalOptions{}
	root := &cobra.Command{
		Use:   "rkt",
		Short: "rkt runs application containers as pods, isolated by a swappable stage1 (kvm, nspawn, fly)",
		Long: `rkt runs application containers as pods. A pod is one or more apps that
share fate, network and volumes. rkt is daemonless: 'rkt run' is the pod's
parent process. Isolation is delegated to a stage1: kvm boots each pod as a
lightweight VM (the default), nspawn uses Linux namespaces and cgroups, and
fly only chroots.

Failures of rkt itself exit with status 254; 'rkt run' otherwise exits with
the status of the pod's app.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			return g.validate()
		},
	}
	pf := root.PersistentFlags()
	pf.BoolVar(&g.Debug, "debug", false, "print out more debug information to stderr")
	pf.StringVar(&g.Dir, "dir", "/var/lib/rkt", "rkt data directory")
	pf.StringVar(&g.LocalConfig, "local-config", "/etc/rkt", "local configuration directory")
	pf.StringVar(&g.SystemConfig, "system-config", "/usr/lib/rkt", "system configuration directory")
	pf.StringVar(&g.UserConfig, "user-config", "", "user configuration directory")
	pf.StringSliceVar(&g.InsecureOptions, "insecure-options", nil,
		"comma-separated list of security features to disable: "+strings.Join(validInsecureOptions, ", "))
	pf.BoolVar(&g.TrustKeysHTTPS, "trust-keys-from-https", false, "automatically trust gpg keys fetched from https")

	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return fmt.Errorf("%w (see '%s --help')", err, c.CommandPath())
	})
	for _, add := range commands {
		root.AddCommand(add(g))
	}
	return root
}

// commands holds the constructors of every top-level command; each command's
// file registers itself in an init function, so adding a command touches only
// its own file.
var commands []func(*globalOptions) *cobra.Command

func register(f func(*globalOptions) *cobra.Command) { commands = append(commands, f) }
