package stage1

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"

	"github.com/spf13/pflag"
)

// RunFlags is everything stage0 tells the run entrypoint. Args renders it to
// argv and ParseRunFlags reads it back: the only two places that know the
// flag spellings.
type RunFlags struct {
	UUID        string `json:"uuid"`
	Debug       bool   `json:"debug,omitempty"`
	Nets        string `json:"net,omitempty"` // as given to --net: "none", "host", "default", "a,b:ARG=V"
	Interactive bool   `json:"interactive,omitempty"`
	Hostname    string `json:"hostname,omitempty"`
	DNSConfMode string `json:"dnsConfMode,omitempty"` // "resolv=…,hosts=…"
	MDSToken    string `json:"mdsToken,omitempty"`
	LocalConfig string `json:"localConfig,omitempty"`
	// PrivateUsers asks for a user namespace (--private-users): "auto",
	// or the first host uid of the pod's range, optionally with its
	// length ("SHIFT[:COUNT]"). Empty means none.
	PrivateUsers string `json:"privateUsers,omitempty"`
	// DisableCapabilities, DisablePaths and DisableSeccomp are
	// --insecure-options=capabilities, paths and seccomp (rkt's interface
	// v3 flags). They are optional: a stage1 that does not restrict the
	// corresponding thing may accept and ignore them.
	DisableCapabilities bool `json:"disableCapabilities,omitempty"`
	DisablePaths        bool `json:"disablePaths,omitempty"`
	DisableSeccomp      bool `json:"disableSeccomp,omitempty"`
}

// Args renders the flags as the run entrypoint's argv (without argv[0]).
func (f RunFlags) Args() []string {
	var a []string
	if f.Debug {
		a = append(a, "--debug")
	}
	if f.Nets != "" {
		a = append(a, "--net="+f.Nets)
	}
	if f.Interactive {
		a = append(a, "--interactive")
	}
	if f.Hostname != "" {
		a = append(a, "--hostname="+f.Hostname)
	}
	if f.DNSConfMode != "" {
		a = append(a, "--dns-conf-mode="+f.DNSConfMode)
	}
	if f.MDSToken != "" {
		a = append(a, "--mds-token="+f.MDSToken)
	}
	if f.LocalConfig != "" {
		a = append(a, "--local-config="+f.LocalConfig)
	}
	if f.PrivateUsers != "" {
		a = append(a, "--private-users="+f.PrivateUsers)
	}
	if f.DisableCapabilities {
		a = append(a, "--disable-capabilities-restriction")
	}
	if f.DisablePaths {
		a = append(a, "--disable-paths")
	}
	if f.DisableSeccomp {
		a = append(a, "--disable-seccomp")
	}
	return append(a, f.UUID)
}

// ParseRunFlags parses the run entrypoint's argv (without argv[0]).
func ParseRunFlags(args []string) (RunFlags, error) {
	var f RunFlags
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	fs.BoolVar(&f.Debug, "debug", false, "")
	fs.StringVar(&f.Nets, "net", "", "")
	fs.BoolVar(&f.Interactive, "interactive", false, "")
	fs.StringVar(&f.Hostname, "hostname", "", "")
	fs.StringVar(&f.DNSConfMode, "dns-conf-mode", "", "")
	fs.StringVar(&f.MDSToken, "mds-token", "", "")
	fs.StringVar(&f.LocalConfig, "local-config", "", "")
	fs.StringVar(&f.PrivateUsers, "private-users", "", "")
	fs.BoolVar(&f.DisableCapabilities, "disable-capabilities-restriction", false, "")
	fs.BoolVar(&f.DisablePaths, "disable-paths", false, "")
	fs.BoolVar(&f.DisableSeccomp, "disable-seccomp", false, "")
	if err := fs.Parse(args); err != nil {
		return f, fmt.Errorf("stage1 run flags: %w", err)
	}
	if fs.NArg() != 1 {
		return f, fmt.Errorf("stage1 run flags: want exactly one pod UUID, got %q", fs.Args())
	}
	f.UUID = fs.Arg(0)
	return f, nil
}

// Save records the run flags in the pod directory so that enter, stop and gc
// know how the pod was started.
func (f RunFlags) Save(p PodDir) error {
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	return WriteFileAtomic(p.RunFlagsFile(), b)
}

// LoadRunFlags reads what Save recorded.
func LoadRunFlags(p PodDir) (RunFlags, error) {
	var f RunFlags
	b, err := os.ReadFile(p.RunFlagsFile())
	if err != nil {
		return f, err
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return f, fmt.Errorf("corrupt %s: %w", p.RunFlagsFile(), err)
	}
	return f, nil
}

// EnterFlags is what stage0 passes to the enter entrypoint:
// --pid=PID --appname=NAME -- CMD ARGS...
type EnterFlags struct {
	PID     int
	AppName string
	TTY     bool
	Cmd     []string
}

// Args renders the enter entrypoint's argv.
func (f EnterFlags) Args() []string {
	a := []string{"--pid=" + strconv.Itoa(f.PID), "--appname=" + f.AppName}
	if f.TTY {
		a = append(a, "--tty")
	}
	return append(append(a, "--"), f.Cmd...)
}

// ParseEnterFlags parses the enter entrypoint's argv.
func ParseEnterFlags(args []string) (EnterFlags, error) {
	var f EnterFlags
	fs := pflag.NewFlagSet("enter", pflag.ContinueOnError)
	fs.IntVar(&f.PID, "pid", 0, "")
	fs.StringVar(&f.AppName, "appname", "", "")
	fs.BoolVar(&f.TTY, "tty", false, "")
	if err := fs.Parse(args); err != nil {
		return f, fmt.Errorf("stage1 enter flags: %w", err)
	}
	f.Cmd = fs.Args()
	if f.AppName == "" || len(f.Cmd) == 0 {
		return f, fmt.Errorf("stage1 enter flags: need --appname and a command")
	}
	return f, nil
}

// StopFlags is what stage0 passes to the stop entrypoint: [--force] UUID.
type StopFlags struct {
	Force bool
	UUID  string
}

// Args renders the stop entrypoint's argv.
func (f StopFlags) Args() []string {
	if f.Force {
		return []string{"--force", f.UUID}
	}
	return []string{f.UUID}
}

// ParseStopFlags parses the stop entrypoint's argv.
func ParseStopFlags(args []string) (StopFlags, error) {
	var f StopFlags
	fs := pflag.NewFlagSet("stop", pflag.ContinueOnError)
	fs.BoolVar(&f.Force, "force", false, "")
	if err := fs.Parse(args); err != nil {
		return f, fmt.Errorf("stage1 stop flags: %w", err)
	}
	if fs.NArg() != 1 {
		return f, fmt.Errorf("stage1 stop flags: want exactly one pod UUID, got %q", fs.Args())
	}
	f.UUID = fs.Arg(0)
	return f, nil
}

// GCFlags is what stage0 passes to the gc entrypoint: [--debug] [--local-config=P] UUID.
type GCFlags struct {
	Debug       bool
	LocalConfig string
	UUID        string
}

// Args renders the gc entrypoint's argv.
func (f GCFlags) Args() []string {
	var a []string
	if f.Debug {
		a = append(a, "--debug")
	}
	if f.LocalConfig != "" {
		a = append(a, "--local-config="+f.LocalConfig)
	}
	return append(a, f.UUID)
}

// ParseGCFlags parses the gc entrypoint's argv.
func ParseGCFlags(args []string) (GCFlags, error) {
	var f GCFlags
	fs := pflag.NewFlagSet("gc", pflag.ContinueOnError)
	fs.BoolVar(&f.Debug, "debug", false, "")
	fs.StringVar(&f.LocalConfig, "local-config", "", "")
	if err := fs.Parse(args); err != nil {
		return f, fmt.Errorf("stage1 gc flags: %w", err)
	}
	if fs.NArg() != 1 {
		return f, fmt.Errorf("stage1 gc flags: want exactly one pod UUID, got %q", fs.Args())
	}
	f.UUID = fs.Arg(0)
	return f, nil
}
