// Command inspector is the multi-tool that rkt's functional tests run inside
// pods to observe the environment an app gets: its user, environment,
// capabilities, cgroup limits, mounts, network and exit behaviour. It is
// built static (CGO_ENABLED=0) and packaged as the rkt.dev/examples/inspector
// image by images/build.sh.
//
// Flags may be combined; whatever order they are given in, the actions run
// in the order below, so a test can write a file and read it back, or print
// something and then sleep, in one invocation. Each action prints one line
// on stdout (except where noted), in a format tests can grep for:
//
//	--print-msg=S           S
//	--stderr-msg=S          S (on stderr)
//	--print-env=NAME[,..]   NAME=value, or "NAME (unset)"; one line per name, repeatable
//	--print-user            uid=U gid=G groups=G1,G2 (real IDs; supplementary groups sorted)
//	--print-cwd             cwd=DIR
//	--print-hostname        hostname=H
//	--print-kernel          kernel=RELEASE (uname -r)
//	--print-time            time=NANOSECONDS (the wall clock, since the Unix epoch)
//	--print-caps            cap-effective=0xHEX cap-permitted=0xHEX cap-bounding=0xHEX (16 hex digits)
//	--print-caps-pid=PID    the same for process PID (0: the inspector itself), as rkt's inspector
//	--print-no-new-privs    no-new-privs=0|1
//	--print-seccomp         seccomp=0|1|2 (disabled, strict, filter)
//	--print-memory-limit    memory-limit=BYTES|max (own cgroup; a v1 hierarchy with the controller wins over v2)
//	--print-cpu-quota       cpu-quota=MILLICORESm|max (own cgroup's CFS quota*1000/period, as the resource/cpu isolator)
//	--print-ipv4            ipv4=A,B (non-loopback IPv4 addresses, empty if none)
//	--check-mount=PATH      mount=PATH mountpoint=true|false readonly=true|false fstype=T (of the mount holding PATH); repeatable
//	--write-file=PATH       wrote=PATH (writes --content=S, default empty; mode 0644)
//	--read-file=PATH        <<<CONTENT>>> (exact file content, framed); repeatable
//	--stat-file=PATH        stat=PATH type=file|dir|symlink|chardev|blockdev|fifo|socket mode=0OCTAL uid=U gid=G (lstat); repeatable
//	--print-stdin           copies stdin to stdout until EOF, unframed
//	--get-http=URL          http-status=CODE http-body=<<<BODY>>>
//	--probe-vsock=CID:PORT  vsock=CID:PORT refused|closed|open (nothing listens; a listener accepted and hung up; it accepted and waits)
//	--sleep=DURATION        sleeping=DURATION, then sleeps (Go duration: 500ms, 10s, 1h)
//	--serve-http=ADDR       serving=ADDR once listening; GET / answers 200 with the hostname; runs until killed
//	--kill-self=SIGNAL      kill-self=SIGNAL, then dies by SIGNAL (name with or without SIG, or number)
//	--exit-code=N           exits with N (0..255; default 0)
//
// --print-memorylimit and --print-cpuquota are rkt's inspector's names for
// --print-memory-limit and --print-cpu-quota.
//
// If an action fails, the inspector prints "inspector: --FLAG: ERROR" on
// stderr and exits 1 without running later actions. A flag error (unknown
// flag, bad value, arguments) prints usage and exits 2, like the flag
// package does.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// options holds the parsed flags.
type options struct {
	msg, stderrMsg                 string
	env                            listFlag
	user, cwd, hostname, kernel    bool
	clock                          bool
	caps, noNewPrivs, seccomp      bool
	capsPID                        int // -1: not asked
	memoryLimit, cpuQuota, ipv4    bool
	checkMount, readFile, statFile listFlag
	writeFile, content             string
	stdin                          bool
	getHTTP, serveHTTP, probeVsock string
	sleep                          time.Duration
	killSelf                       string
	killSignal                     syscall.Signal
	exitCode                       int
	contentSet                     bool
}

// listFlag is a repeatable string flag; with a separator, each value is
// also split on it, so both --print-env=A,B and --print-env=A --print-env=B
// work. Paths are not split, as commas are legal in them.
type listFlag struct {
	sep    string
	values []string
}

// String implements flag.Value.
func (l *listFlag) String() string { return strings.Join(l.values, ",") }

// Set implements flag.Value.
func (l *listFlag) Set(v string) error {
	if l.sep == "" {
		l.values = append(l.values, v)
		return nil
	}
	for _, s := range strings.Split(v, l.sep) {
		if s != "" {
			l.values = append(l.values, s)
		}
	}
	return nil
}

// errUsage marks errors that must exit 2, after the flag package printed
// usage or we printed the reason.
var errUsage = errors.New("usage error")

// parseFlags parses args; a returned flag.ErrHelp means -h was given.
func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{env: listFlag{sep: ","}}
	fs := flag.NewFlagSet("inspector", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: inspector [flags]; actions run in a fixed order, see the package documentation")
		fs.PrintDefaults()
	}
	fs.StringVar(&o.msg, "print-msg", "", "print `S` on stdout")
	fs.StringVar(&o.stderrMsg, "stderr-msg", "", "print `S` on stderr")
	fs.Var(&o.env, "print-env", "print NAME=value for environment variable `NAME` (repeatable, comma list)")
	fs.BoolVar(&o.user, "print-user", false, "print uid, gid and supplementary groups")
	fs.BoolVar(&o.cwd, "print-cwd", false, "print the working directory")
	fs.BoolVar(&o.hostname, "print-hostname", false, "print the hostname")
	fs.BoolVar(&o.kernel, "print-kernel", false, "print the kernel release")
	fs.BoolVar(&o.clock, "print-time", false, "print the wall clock in nanoseconds since the Unix epoch")
	fs.BoolVar(&o.caps, "print-caps", false, "print effective, permitted and bounding capability sets")
	fs.IntVar(&o.capsPID, "print-caps-pid", -1, "print the capability sets of process `PID` (0: this one)")
	fs.BoolVar(&o.noNewPrivs, "print-no-new-privs", false, "print the no_new_privs flag")
	fs.BoolVar(&o.seccomp, "print-seccomp", false, "print the seccomp mode")
	fs.BoolVar(&o.memoryLimit, "print-memory-limit", false, "print the memory limit of the own cgroup")
	fs.BoolVar(&o.memoryLimit, "print-memorylimit", false, "same as --print-memory-limit (rkt's name)")
	fs.BoolVar(&o.cpuQuota, "print-cpu-quota", false, "print the CPU quota of the own cgroup in millicores")
	fs.BoolVar(&o.cpuQuota, "print-cpuquota", false, "same as --print-cpu-quota (rkt's name)")
	fs.BoolVar(&o.ipv4, "print-ipv4", false, "print non-loopback IPv4 addresses")
	fs.Var(&o.checkMount, "check-mount", "report whether `PATH` is a mountpoint and read-only (repeatable)")
	fs.StringVar(&o.writeFile, "write-file", "", "write --content to `PATH`")
	fs.StringVar(&o.content, "content", "", "content `S` for --write-file")
	fs.Var(&o.readFile, "read-file", "print the content of `PATH` (repeatable)")
	fs.Var(&o.statFile, "stat-file", "print type, mode, uid and gid of `PATH` (repeatable)")
	fs.BoolVar(&o.stdin, "print-stdin", false, "copy stdin to stdout until EOF")
	fs.StringVar(&o.getHTTP, "get-http", "", "GET `URL` and print status and body")
	fs.StringVar(&o.probeVsock, "probe-vsock", "", "connect to AF_VSOCK address `CID:PORT` and tell what answered")
	fs.DurationVar(&o.sleep, "sleep", 0, "sleep for `DURATION`")
	fs.StringVar(&o.serveHTTP, "serve-http", "", "serve HTTP on `ADDR` until killed")
	fs.StringVar(&o.killSelf, "kill-self", "", "kill itself with `SIGNAL`")
	fs.IntVar(&o.exitCode, "exit-code", 0, "exit with `N`")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	fs.Visit(func(f *flag.Flag) { o.contentSet = o.contentSet || f.Name == "content" })
	var problem string
	switch {
	case fs.NArg() > 0:
		problem = fmt.Sprintf("unexpected arguments %q", fs.Args())
	case o.contentSet && o.writeFile == "":
		problem = "--content needs --write-file"
	case o.exitCode < 0 || o.exitCode > 255:
		problem = fmt.Sprintf("--exit-code=%d is outside 0..255", o.exitCode)
	case o.capsPID < -1:
		problem = fmt.Sprintf("--print-caps-pid=%d is not a process ID", o.capsPID)
	case o.sleep < 0:
		problem = fmt.Sprintf("--sleep=%v is negative", o.sleep)
	}
	if problem == "" && o.killSelf != "" {
		sig, err := parseSignal(o.killSelf)
		if err != nil {
			problem = fmt.Sprintf("--kill-self: %v", err)
		}
		o.killSignal = sig
	}
	if problem != "" {
		fmt.Fprintln(stderr, problem)
		fs.Usage()
		return nil, errUsage
	}
	return o, nil
}

// run executes the actions selected by args and returns the exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2
	}
	for _, a := range actions(o, stdin) {
		if !a.on {
			continue
		}
		if err := a.do(stdout, stderr); err != nil {
			fmt.Fprintf(stderr, "inspector: --%s: %v\n", a.flag, err)
			return 1
		}
	}
	return o.exitCode
}

// action is one step of the fixed sequence.
type action struct {
	flag string
	on   bool
	do   func(stdout, stderr io.Writer) error
}

// actions lists every action in execution order; this list is the single
// source of the order documented in the package comment.
func actions(o *options, stdin io.Reader) []action {
	return []action{
		{"print-msg", o.msg != "", func(w, _ io.Writer) error {
			_, err := fmt.Fprintln(w, o.msg)
			return err
		}},
		{"stderr-msg", o.stderrMsg != "", func(_, e io.Writer) error {
			_, err := fmt.Fprintln(e, o.stderrMsg)
			return err
		}},
		{"print-env", len(o.env.values) > 0, func(w, _ io.Writer) error { return printEnv(w, o.env.values) }},
		{"print-user", o.user, func(w, _ io.Writer) error { return printUser(w) }},
		{"print-cwd", o.cwd, func(w, _ io.Writer) error { return printCwd(w) }},
		{"print-hostname", o.hostname, func(w, _ io.Writer) error { return printHostname(w) }},
		{"print-kernel", o.kernel, func(w, _ io.Writer) error { return printKernel(w) }},
		{"print-time", o.clock, func(w, _ io.Writer) error {
			_, err := fmt.Fprintf(w, "time=%d\n", time.Now().UnixNano())
			return err
		}},
		{"print-caps", o.caps, func(w, _ io.Writer) error { return printStatus(w, 0, formatCaps) }},
		{"print-caps-pid", o.capsPID >= 0, func(w, _ io.Writer) error { return printStatus(w, o.capsPID, formatCaps) }},
		{"print-no-new-privs", o.noNewPrivs, func(w, _ io.Writer) error {
			return printStatus(w, 0, statusField("NoNewPrivs", "no-new-privs"))
		}},
		{"print-seccomp", o.seccomp, func(w, _ io.Writer) error {
			return printStatus(w, 0, statusField("Seccomp", "seccomp"))
		}},
		{"print-memory-limit", o.memoryLimit, func(w, _ io.Writer) error { return printMemoryLimit(w) }},
		{"print-cpu-quota", o.cpuQuota, func(w, _ io.Writer) error { return printCPUQuota(w) }},
		{"print-ipv4", o.ipv4, func(w, _ io.Writer) error { return printIPv4(w) }},
		{"check-mount", len(o.checkMount.values) > 0, func(w, _ io.Writer) error {
			return checkMounts(w, o.checkMount.values)
		}},
		{"write-file", o.writeFile != "", func(w, _ io.Writer) error { return writeFile(w, o.writeFile, o.content) }},
		{"read-file", len(o.readFile.values) > 0, func(w, _ io.Writer) error { return readFiles(w, o.readFile.values) }},
		{"stat-file", len(o.statFile.values) > 0, func(w, _ io.Writer) error { return statFiles(w, o.statFile.values) }},
		{"print-stdin", o.stdin, func(w, _ io.Writer) error {
			_, err := io.Copy(w, stdin)
			return err
		}},
		{"get-http", o.getHTTP != "", func(w, _ io.Writer) error { return getHTTP(w, o.getHTTP) }},
		{"probe-vsock", o.probeVsock != "", func(w, _ io.Writer) error { return probeVsock(w, o.probeVsock) }},
		{"sleep", o.sleep > 0, func(w, _ io.Writer) error {
			if _, err := fmt.Fprintf(w, "sleeping=%v\n", o.sleep); err != nil {
				return err
			}
			time.Sleep(o.sleep)
			return nil
		}},
		{"serve-http", o.serveHTTP != "", func(w, _ io.Writer) error { return serveHTTP(w, o.serveHTTP) }},
		{"kill-self", o.killSelf != "", func(w, _ io.Writer) error { return killSelf(w, o.killSelf, o.killSignal) }},
	}
}
