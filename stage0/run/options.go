package run

import (
	"io"

	"github.com/appc/spec/schema/types"

	"rkt.dev/rkt/stage0/config"
	"rkt.dev/rkt/stage0/image/remote"
)

// Options are what the user asked for on the command line.
type Options struct {
	DataDir string
	Config  *config.Config
	// Stage1 selects the stage1 image.
	Stage1 Stage1Ref
	// Apps are the pod's apps, in command-line order.
	Apps []AppOptions
	// Volumes are the pod-level volumes (--volume).
	Volumes []types.Volume
	// Ports forward host ports to app ports by name (--port).
	Ports []types.ExposedPort
	// DNS settings for the apps' /etc/resolv.conf and /etc/hosts.
	DNS DNSOptions
	// Env is added to every app (--set-env, --set-env-file, --inherit-env).
	Env []types.EnvironmentVariable
	// InsecureImage accepts images without a verifiable signature.
	InsecureImage bool
	// InsecureTLS and InsecureHTTP relax fetching (--insecure-options=tls,http).
	InsecureTLS, InsecureHTTP bool
	// TrustKeysFromHTTPS trusts keys discovery finds over HTTPS.
	TrustKeysFromHTTPS bool
	// PullPolicy decides when images are fetched; zero means new.
	PullPolicy remote.PullPolicy
	// Run-time settings passed to stage1.
	Net         string
	Hostname    string
	Interactive bool
	Debug       bool
	LocalConfig string
	// PrivateUsers is --private-users: "" (none), "auto" or SHIFT[:COUNT].
	PrivateUsers string
	// InsecureCapabilities, InsecurePaths and InsecureSeccomp are
	// --insecure-options=capabilities, paths and seccomp.
	InsecureCapabilities, InsecurePaths, InsecureSeccomp bool
	// UUIDFileSave, if set, receives the new pod's UUID.
	UUIDFileSave string
	// Log receives progress messages (stderr).
	Log io.Writer
}

// DNSOptions are --dns, --dns-search, --dns-opt, --dns-domain and
// --hosts-entry.
type DNSOptions struct {
	Servers      []string // IP addresses, or the single value "host" or "none"
	Search       []string
	Options      []string
	Domain       string
	HostsEntries []string // IP=HOSTNAME, or the single value "host"
}

// AppOptions are one image and the per-app flags that followed it.
type AppOptions struct {
	Image             string
	Name              string
	Exec              string
	Args              []string
	HasArgs           bool // "--" was given, even with no arguments
	WorkingDir        string
	User, Group       string
	SupplementaryGIDs []int
	Env               []types.EnvironmentVariable
	Mounts            []MountOption
	ReadOnlyRootFS    bool
	Isolators         IsolatorOptions
}

// MountOption is --mount volume=NAME,target=PATH.
type MountOption struct {
	Volume types.ACName
	Target string
}

// Stage1Ref is how the user chose a stage1 (at most one field is set).
type Stage1Ref struct {
	Name    string // image name, or a built-in flavor: kvm, nspawn, fly
	Path    string // an ACI file
	URL     string // file:// URL (remote URLs come with the image fetchers)
	Hash    string // an image ID in the store
	FromDir string // an ACI file name in the stage1 images directory
}
