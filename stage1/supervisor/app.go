package supervisor

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
)

// App describes one app to start. The zero value of each optional field
// means what the appc spec says it means: working directory "/", user and
// group 0, no extra mounts.
type App struct {
	// Name is the app's name in the pod manifest; it becomes AC_APP_NAME.
	Name string `json:"name"`
	// Root is the directory that becomes the app's "/". When Lower is set,
	// Root is the mountpoint of an overlay of Lower (the read-only rendered
	// image) under Upper and Work, so images stay shared and untouched.
	Root  string `json:"root"`
	Lower string `json:"lower,omitempty"`
	Upper string `json:"upper,omitempty"`
	Work  string `json:"work,omitempty"`
	// Exec is the command line; Exec[0] is absolute or looked up in the
	// app's PATH inside its root.
	Exec []string `json:"exec"`
	// Env holds KEY=VALUE pairs. PATH defaults to the appc default and
	// AC_APP_NAME is always set.
	Env []string `json:"env,omitempty"`
	// User and Group are numeric IDs or names resolved in the app's own
	// /etc/passwd and /etc/group.
	User              string `json:"user,omitempty"`
	Group             string `json:"group,omitempty"`
	SupplementaryGIDs []int  `json:"supplementaryGIDs,omitempty"`
	WorkDir           string `json:"workDir,omitempty"`
	// Mounts are bind-mounted into the root before the app starts.
	Mounts []Mount `json:"mounts,omitempty"`
	// System selects how /proc, /sys and /dev are provided.
	System SystemMounts `json:"system"`
	// ReadOnlyRoot remounts the app's root read-only after the mounts.
	ReadOnlyRoot bool `json:"readOnlyRoot,omitempty"`
	// Isolators restrict the app's process (see Isolators).
	Isolators Isolators `json:"isolators"`

	// OwnTerminal says that Stdin is a terminal made for this process
	// alone (the kvm guest agent's pseudo-terminal for `rkt enter`): it
	// becomes the controlling terminal of the process's new session, so
	// that ^C typed there reaches it. Without it a terminal stdin is the
	// caller's own, which the process shares (an interactive app).
	OwnTerminal bool `json:"ownTerminal,omitempty"`

	// Stdin, Stdout and Stderr are the app's standard streams. An *os.File
	// is handed to the app as is (a terminal stays a terminal); any other
	// reader or writer is connected through a pipe. Nil means /dev/null.
	Stdin  io.Reader `json:"-"`
	Stdout io.Writer `json:"-"`
	Stderr io.Writer `json:"-"`
}

// Mount is a bind mount of a host (or guest) path into an app's root.
type Mount struct {
	Source   string `json:"source"`
	Target   string `json:"target"` // absolute, inside the app's root
	ReadOnly bool   `json:"readOnly,omitempty"`
	// CopyUp fills Source, a volume directory, with the content the app's
	// image has at Target before mounting it, when Source is still empty:
	// Docker's semantics for a volume the image declares (see copyUp).
	CopyUp bool `json:"copyUp,omitempty"`
}

// SystemMounts chooses how an app gets /proc, /sys and /dev.
type SystemMounts int

const (
	// HostSystemMounts bind-mounts the host's /proc, /sys and /dev: the fly
	// flavor shares the host's namespaces, so the host's views are the
	// right ones.
	HostSystemMounts SystemMounts = iota
	// PrivateSystemMounts mounts a fresh procfs, a read-only sysfs and a
	// tmpfs /dev with only the standard device nodes (appc's ACE list), for
	// flavors that isolate the app (nspawn, the kvm guest).
	PrivateSystemMounts
)

// validate rejects specs that cannot be started, before any process exists.
func (a *App) validate() error {
	if a.Name == "" {
		return errors.New("app has no name")
	}
	if len(a.Exec) == 0 || a.Exec[0] == "" {
		return fmt.Errorf("app %s has no command to execute; give one with --exec", a.Name)
	}
	if !filepath.IsAbs(a.Root) {
		return fmt.Errorf("app %s: root %q is not an absolute path", a.Name, a.Root)
	}
	if a.Lower != "" && (a.Upper == "" || a.Work == "") {
		return fmt.Errorf("app %s: an overlay root needs upper and work directories", a.Name)
	}
	for _, m := range a.Mounts {
		if !filepath.IsAbs(m.Target) || !filepath.IsAbs(m.Source) {
			return fmt.Errorf("app %s: mount %s on %s: source and target must be absolute paths", a.Name, m.Source, m.Target)
		}
	}
	if a.WorkDir != "" && !filepath.IsAbs(a.WorkDir) {
		return fmt.Errorf("app %s: working directory %q is not an absolute path", a.Name, a.WorkDir)
	}
	if err := a.Isolators.validate(); err != nil {
		return fmt.Errorf("app %s: %w", a.Name, err)
	}
	return nil
}

// allowsDirectStart reports whether the app can be started from a thread of
// the supervisor's own process (Supervisor.startDirect) rather than through
// the exec helper. Besides what its isolators rule out, the app must run as
// root: between switching to the app's user and forking, the thread would
// carry that user's credentials inside the supervisor's process, where any
// process of that user could signal the whole supervisor (signal permission
// is checked against the thread found by its id).
func (a *App) allowsDirectStart() bool {
	return (a.User == "" || a.User == "0") && a.Isolators.allowsDirectStart()
}
