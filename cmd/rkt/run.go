package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/appc/spec/schema/types"
	"github.com/spf13/cobra"

	"rkt.dev/rkt/stage0/image/remote"
	"rkt.dev/rkt/stage0/run"
)

func init() {
	register(newRunCommand)
	register(newPrepareCommand)
	register(newRunPreparedCommand)
}

// podFlags are the flags of run and prepare that shape the pod.
type podFlags struct {
	stage1       run.Stage1Ref
	volumes      []string
	setEnv       []string
	setEnvFile   string
	inheritEnv   bool
	uuidFileSave string
	ports        []string
	dns          run.DNSOptions
	pullPolicy   string
}

func (f *podFlags) register(c *cobra.Command) {
	fl := c.Flags()
	fl.StringVar(&f.stage1.Name, "stage1-name", "", "stage1 image name, or a built-in flavor: kvm, nspawn, fly")
	fl.StringVar(&f.stage1.Path, "stage1-path", "", "path to a stage1 image file (.aci)")
	fl.StringVar(&f.stage1.URL, "stage1-url", "", "URL of a stage1 image (file://)")
	fl.StringVar(&f.stage1.Hash, "stage1-hash", "", "image ID of a stage1 image in the store")
	fl.StringVar(&f.stage1.FromDir, "stage1-from-dir", "", "file name of a stage1 image in the stage1 images directory")
	fl.StringArrayVar(&f.volumes, "volume", nil, "pod volume: NAME,kind=host,source=PATH[,readOnly=true] or NAME,kind=empty[,mode=0755,uid=0,gid=0] (repeatable)")
	fl.StringArrayVar(&f.setEnv, "set-env", nil, "environment variable NAME=VALUE for every app (repeatable)")
	fl.StringVar(&f.setEnvFile, "set-env-file", "", "file with NAME=VALUE lines to set for every app")
	fl.BoolVar(&f.inheritEnv, "inherit-env", false, "give the apps rkt's own environment")
	fl.StringVar(&f.uuidFileSave, "uuid-file-save", "", "write the pod's UUID to this file")
	fl.StringVar(&f.pullPolicy, "pull-policy", "new", "when to fetch images: new (only if missing), update (check for a newer one) or never")
	fl.StringArrayVar(&f.ports, "port", nil, "forward a host port to the app port of this name: NAME:[HOSTIP:]HOSTPORT (repeatable)")
	fl.StringSliceVar(&f.dns.Servers, "dns", nil, "name servers for the apps' resolv.conf (IPs), or host (copy the host's), or none")
	fl.StringSliceVar(&f.dns.Search, "dns-search", nil, "DNS search domains")
	fl.StringSliceVar(&f.dns.Options, "dns-opt", nil, "DNS resolver options")
	fl.StringVar(&f.dns.Domain, "dns-domain", "", "DNS domain")
	fl.StringSliceVar(&f.dns.HostsEntries, "hosts-entry", nil, "extra /etc/hosts entries IP=HOSTNAME, or host (copy the host's)")
}

// parsePort parses --port=NAME:[HOSTIP:]HOSTPORT.
func parsePort(s string) (types.ExposedPort, error) {
	var p types.ExposedPort
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return p, fmt.Errorf("--port=%s: want NAME:[HOSTIP:]HOSTPORT", s)
	}
	if err := p.Name.Set(parts[0]); err != nil {
		return p, fmt.Errorf("--port=%s: invalid port name: %w", s, err)
	}
	if len(parts) == 3 {
		if p.HostIP = net.ParseIP(parts[1]); p.HostIP == nil {
			return p, fmt.Errorf("--port=%s: %q is not an IP address", s, parts[1])
		}
	}
	n, err := strconv.ParseUint(parts[len(parts)-1], 10, 16)
	if err != nil || n == 0 {
		return p, fmt.Errorf("--port=%s: %q is not a port number", s, parts[len(parts)-1])
	}
	p.HostPort = uint(n)
	return p, nil
}

// options turns flags and positional arguments into pipeline options.
func (f *podFlags) options(g *globalOptions, cmd *cobra.Command, args []string) (run.Options, error) {
	var o run.Options
	var err error
	if o.DataDir, err = g.dataDir(cmd); err != nil {
		return o, err
	}
	if o.Config, err = g.config(); err != nil {
		return o, err
	}
	o.Stage1 = f.stage1
	if o.Stage1.Path != "" {
		if o.Stage1.Path, err = filepath.Abs(o.Stage1.Path); err != nil {
			return o, err
		}
	}
	for _, v := range f.volumes {
		vol, err := types.VolumeFromString(v)
		if err != nil {
			return o, fmt.Errorf("--volume %q: %w", v, err)
		}
		o.Volumes = append(o.Volumes, *vol)
	}
	if f.inheritEnv {
		for _, kv := range os.Environ() {
			if ev, err := parseEnv(kv); err == nil {
				o.Env = append(o.Env, ev)
			}
		}
	}
	if f.setEnvFile != "" {
		if o.Env, err = readEnvFile(f.setEnvFile, o.Env); err != nil {
			return o, err
		}
	}
	for _, kv := range f.setEnv {
		ev, err := parseEnv(kv)
		if err != nil {
			return o, fmt.Errorf("--set-env: %w", err)
		}
		o.Env = append(o.Env, ev)
	}
	for _, ps := range f.ports {
		p, err := parsePort(ps)
		if err != nil {
			return o, err
		}
		o.Ports = append(o.Ports, p)
	}
	o.DNS = f.dns
	if o.Apps, err = parseApps(args); err != nil {
		return o, err
	}
	o.InsecureImage = g.insecure("image")
	o.InsecureTLS, o.InsecureHTTP, o.TrustKeysFromHTTPS = g.insecure("tls"), g.insecure("http"), g.TrustKeysHTTPS
	if o.PullPolicy, err = remote.ParsePullPolicy(f.pullPolicy); err != nil {
		return o, err
	}
	o.Debug = g.Debug
	o.LocalConfig = g.LocalConfig
	o.UUIDFileSave = f.uuidFileSave
	o.Log = os.Stderr
	return o, nil
}

// readEnvFile appends the NAME=VALUE lines of a file (blank lines and
// #-comments skipped).
func readEnvFile(path string, env []types.EnvironmentVariable) ([]types.EnvironmentVariable, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--set-env-file: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		ev, err := parseEnv(line)
		if err != nil {
			return nil, fmt.Errorf("--set-env-file %s line %d: %w", path, n, err)
		}
		env = append(env, ev)
	}
	return env, sc.Err()
}

// runtimeFlags are the settings given to stage1 when the pod starts.
type runtimeFlags struct {
	net          string
	hostname     string
	interactive  bool
	privateUsers string
}

func (f *runtimeFlags) register(c *cobra.Command) {
	fl := c.Flags()
	fl.StringVar(&f.net, "net", "default", "networks to join: none, host, default, or CNI network names (comma-separated); a bare --net means default")
	fl.Lookup("net").NoOptDefVal = "default"
	fl.StringVar(&f.hostname, "hostname", "", "the pod's hostname (default rkt-UUID)")
	fl.BoolVar(&f.interactive, "interactive", false, "attach the terminal's stdin to the app (one app only)")
	fl.StringVar(&f.privateUsers, "private-users", "", "run the pod in a user namespace (nspawn only): a bare flag or \"auto\" picks a free uid range, SHIFT[:COUNT] names one")
	fl.Lookup("private-users").NoOptDefVal = "auto"
}

// apply sets the run-time options, including the global
// --insecure-options that relax isolation.
func (f *runtimeFlags) apply(g *globalOptions, o *run.Options) {
	o.Net, o.Hostname, o.Interactive, o.PrivateUsers = f.net, f.hostname, f.interactive, f.privateUsers
	o.InsecureCapabilities = g.insecure("capabilities")
	o.InsecurePaths = g.insecure("paths")
	o.InsecureSeccomp = g.insecure("seccomp")
}

func newRunCommand(g *globalOptions) *cobra.Command {
	pf, rf := &podFlags{}, &runtimeFlags{}
	c := &cobra.Command{
		Use:   "run [flags] IMAGE [app flags] [-- args [---]] [IMAGE ...]",
		Short: "Run images in a new pod",
		Long: `Run one or more images in a new pod and wait for it to exit. rkt run is the
pod's parent process: its exit status is the app's (or the first failing
app's), and killing it stops the pod.

IMAGE is an image file (.aci), an https:// URL of one, a name found by appc
discovery (example.com/app:v1), docker://REGISTRY/NAME[:TAG|@DIGEST],
oci-layout:PATH[:TAG], docker-archive:PATH, or the name or ID of an image
in the store. ACIs must be signed by a trusted key (see 'rkt trust') unless
--insecure-options=image; Docker and OCI images always need it.

` + appFlagsUsage,
		Example: `  rkt run --insecure-options=image --stage1-name=fly build/images/inspector.aci -- --print-msg=hi
  rkt run --net=none busybox.aci --exec=/bin/echo -- hello`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := pf.options(g, cmd, args)
			if err != nil {
				return err
			}
			rf.apply(g, &o)
			return run.Run(o)
		},
	}
	c.Flags().SetInterspersed(false)
	pf.register(c)
	rf.register(c)
	return c
}

func newPrepareCommand(g *globalOptions) *cobra.Command {
	pf := &podFlags{}
	var quiet bool
	c := &cobra.Command{
		Use:   "prepare [flags] IMAGE [app flags] [-- args [---]] [IMAGE ...]",
		Short: "Prepare a pod to run later with run-prepared; prints its UUID",
		Long: `Prepare fetches and renders the images and creates the pod, without
starting it. Start it with 'rkt run-prepared UUID'.

` + appFlagsUsage,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := pf.options(g, cmd, args)
			if err != nil {
				return err
			}
			uuid, err := run.Prepare(o)
			if err != nil {
				return err
			}
			fmt.Println(uuid)
			return nil
		},
	}
	c.Flags().SetInterspersed(false)
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the UUID (the default; kept for compatibility)")
	pf.register(c)
	return c
}

func newRunPreparedCommand(g *globalOptions) *cobra.Command {
	rf := &runtimeFlags{}
	c := &cobra.Command{
		Use:   "run-prepared [flags] UUID",
		Short: "Run a prepared pod",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o := run.Options{Debug: g.Debug, LocalConfig: g.LocalConfig, Log: os.Stderr}
			var err error
			if o.DataDir, err = g.dataDir(cmd); err != nil {
				return err
			}
			rf.apply(g, &o)
			return run.RunPrepared(o, args[0])
		},
	}
	rf.register(c)
	return c
}
