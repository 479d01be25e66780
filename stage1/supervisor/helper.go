package supervisor

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// helperArg is argv[1] of a process started as the exec helper; argv[2] is
// the mode.
const helperArg = "__rkt_supervisor_exec"

const (
	helperStart = "start" // new mount namespace: set up the root, then exec
	helperEnter = "enter" // chroot into a running app's root, then exec
)

// The helper's inherited descriptors, after stdin, stdout and stderr.
const (
	specFD = 3
	errFD  = 4
)

// defaultPath is the appc spec's PATH for apps that set none.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// RunHelperIfRequested must be the first call in main of every binary that
// uses the supervisor. When the process was started as the supervisor's exec
// helper it does the helper's work and never returns; otherwise it returns at
// once.
//
// Why a re-exec: a Go program cannot run code between fork and exec, yet an
// app needs mounts, a new root and dropped privileges applied to itself
// alone. Re-executing ourselves in a fresh mount namespace gives a process
// that can do all of that with ordinary Go code and then exec the app.
func RunHelperIfRequested() {
	if len(os.Args) < 3 || os.Args[1] != helperArg {
		return
	}
	errPipe := os.NewFile(errFD, "supervisor-errors")
	if err := runHelper(os.Args[2]); err != nil {
		fmt.Fprint(errPipe, err.Error())
		os.Exit(254)
	}
	// runHelper only returns on error: on success it has exec'd the app.
	os.Exit(254)
}

func runHelper(mode string) error {
	// Capabilities, no_new_privs and seccomp filters are per thread: the
	// thread that sets them must be the one that execs the app.
	runtime.LockOSThread()
	var app App
	spec := os.NewFile(specFD, "supervisor-spec")
	if err := json.NewDecoder(spec).Decode(&app); err != nil {
		return fmt.Errorf("exec helper: reading app spec: %w", err)
	}
	spec.Close()
	unix.CloseOnExec(errFD)

	switch mode {
	case helperStart:
		if err := setupRoot(&app); err != nil {
			return fmt.Errorf("setting up the root filesystem of app %s: %w", app.Name, err)
		}
	case helperEnter:
		if err := unix.Chroot(app.Root); err != nil {
			return fmt.Errorf("entering the root of app %s: %w", app.Name, err)
		}
	default:
		return fmt.Errorf("exec helper: unknown mode %q", mode)
	}
	return execApp(&app)
}

// execApp runs inside the app's root: it becomes the app (see becomeApp)
// and execs the app's command in place.
func execApp(app *App) error {
	path, env, err := becomeApp(app)
	if err != nil {
		return err
	}
	if err := unix.Exec(path, app.Exec, env); err != nil {
		return fmt.Errorf("app %s: executing %s: %w", app.Name, path, err)
	}
	return nil
}

// becomeApp runs on a locked thread inside the app's root: it resolves the
// user, switches the thread to it, changes to the working directory and
// applies the isolators, and returns the command's path and environment.
// Everything it changes belongs to the calling thread alone, so whatever
// that thread execs or forks next starts as the app.
func becomeApp(app *App) (path string, env []string, err error) {
	cred, home, err := resolveCredentials(app)
	if err != nil {
		return "", nil, err
	}
	env = appEnv(app, home)
	wd := app.WorkDir
	if wd == "" {
		wd = "/"
	}
	if path, err = lookPath(app.Exec[0], env); err != nil {
		return "", nil, fmt.Errorf("app %s: %w", app.Name, err)
	}
	if err := app.Isolators.restrictBeforeCredentials(); err != nil {
		return "", nil, fmt.Errorf("app %s: %w", app.Name, err)
	}
	if err := setThreadCredentials(cred); err != nil {
		return "", nil, fmt.Errorf("app %s: %w", app.Name, err)
	}
	// chdir after dropping privileges, so a directory the user cannot
	// enter is an error, as it would be for the user on any system.
	if err := unix.Chdir(wd); err != nil {
		return "", nil, fmt.Errorf("app %s: working directory %s: %w", app.Name, wd, err)
	}
	if err := app.Isolators.restrictAfterCredentials(cred.uid); err != nil {
		return "", nil, fmt.Errorf("app %s: %w", app.Name, err)
	}
	return path, env, nil
}

// setThreadCredentials switches the calling thread, and only it, to the
// app's groups, gid and uid. Go's syscall.Setuid changes every thread of
// the process, which in the supervisor's own process would demote the
// supervisor; the raw system calls act on one thread, as the kernel does.
func setThreadCredentials(c credentials) error {
	if err := unix.Setgroups(c.groups); err != nil {
		return fmt.Errorf("setting supplementary groups: %w", err)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(c.gid), uintptr(c.gid), uintptr(c.gid)); e != 0 {
		return fmt.Errorf("setting gid %d: %w", c.gid, e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(c.uid), uintptr(c.uid), uintptr(c.uid)); e != 0 {
		return fmt.Errorf("setting uid %d: %w", c.uid, e)
	}
	return nil
}

// appEnv builds the environment: the appc defaults, then the app's own.
func appEnv(app *App, home string) []string {
	env := []string{"PATH=" + defaultPath, "AC_APP_NAME=" + app.Name}
	if home != "" {
		env = append(env, "HOME="+home)
	}
	return mergeEnv(env, app.Env)
}

// mergeEnv appends overrides to base, replacing variables of the same name.
func mergeEnv(base, overrides []string) []string {
	idx := map[string]int{}
	for i, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		idx[k] = i
	}
	for _, kv := range overrides {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := idx[k]; ok {
			base[i] = kv
			continue
		}
		idx[k] = len(base)
		base = append(base, kv)
	}
	return base
}

// lookPath finds an executable as a shell would, using the app's PATH, not
// the helper's.
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		if err := isExecutable(name); err != nil {
			return "", fmt.Errorf("cannot execute %s: %w", name, err)
		}
		return name, nil
	}
	path := defaultPath
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if isExecutable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("executable %q not found in PATH %s", name, path)
}

func isExecutable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", p)
	}
	return nil
}
