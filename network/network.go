package network

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"

	"github.com/containernetworking/cni/libcni"
	cnitypes "github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/vishvananda/netlink"

	"rkt.dev/rkt/internal/netns"
	"rkt.dev/rkt/stage1"
)

// Pod identifies the pod being networked.
type Pod struct {
	UUID    string
	Dir     stage1.PodDir
	DataDir string
}

// Options are the host's networking settings.
type Options struct {
	// ConfDir holds *.conf and *.conflist network configurations
	// (<local config>/net.d).
	ConfDir string
	// PluginDirs are searched for CNI plugin binaries; empty means
	// DefaultPluginDirs.
	PluginDirs []string
	// Ports are forwarded from the host to the pod, on its first network.
	Ports []PortMapping
}

// PortMapping forwards a host port to a pod port (CNI's portMappings
// capability, implemented by the portmap plugin).
type PortMapping struct {
	HostIP        string `json:"hostIP,omitempty"`
	HostPort      int    `json:"hostPort"`
	ContainerPort int    `json:"containerPort"`
	Protocol      string `json:"protocol"`
}

// Info is what net-info.json holds: the pod's namespace and one attachment
// per network, in --net order.
type Info struct {
	Netns       string       `json:"netns"`
	Attachments []Attachment `json:"attachments"`
}

// Attachment is the pod's interface on one network.
type Attachment struct {
	NetName string       `json:"netName"`
	IfName  string       `json:"ifName"`
	IP      string       `json:"ip,omitempty"`      // CIDR, e.g. 172.16.28.2/24
	Gateway string       `json:"gateway,omitempty"` // IPv4 gateway of IP
	MAC     string       `json:"mac,omitempty"`
	MTU     int          `json:"mtu,omitempty"`
	Routes  []Route      `json:"routes,omitempty"`
	DNS     cnitypes.DNS `json:"dns,omitempty"`
	// Config, Args and Ports are what CNI ADD was called with, kept so
	// that DEL uses exactly the same.
	Config json.RawMessage `json:"config"`
	Args   [][2]string     `json:"args,omitempty"`
	Ports  []PortMapping   `json:"ports,omitempty"`
}

// Route is a route of the pod's interface; an empty GW means on-link.
type Route struct {
	Dst string `json:"dst"`
	GW  string `json:"gw,omitempty"`
}

// IPv4 returns the attachment's address without its prefix length.
func (a Attachment) IPv4() string {
	ip, _, err := net.ParseCIDR(a.IP)
	if err != nil {
		return ""
	}
	return ip.String()
}

func (o Options) cni(dataDir string) *libcni.CNIConfig {
	dirs := o.PluginDirs
	if len(dirs) == 0 {
		dirs = DefaultPluginDirs
	}
	return libcni.NewCNIConfigWithCacheDir(dirs, filepath.Join(stateDirOf(dataDir), "cache"), nil)
}

// Setup creates the pod's network namespace and attaches it to every
// requested network. Progress is saved to net-info.json before each ADD,
// so Teardown can undo a setup that failed or crashed halfway.
func Setup(ctx context.Context, pod Pod, spec Spec, opts Options) (*Info, error) {
	if spec.Mode != ModeCNI {
		return nil, fmt.Errorf("network setup: mode %q has no CNI networks", spec.Mode)
	}
	info := &Info{Netns: pod.Dir.Netns()}
	if err := createNetns(info.Netns); err != nil {
		return nil, err
	}
	if err := save(pod.Dir, info); err != nil {
		return nil, err
	}
	cni := opts.cni(pod.DataDir)
	for i, req := range spec.Nets {
		list, err := loadNetwork(opts.ConfDir, stateDirOf(pod.DataDir), req.Name)
		if err != nil {
			return info, err
		}
		att := Attachment{NetName: req.Name, IfName: "eth" + strconv.Itoa(i), Config: list.Bytes, Args: req.Args}
		if i == 0 {
			att.Ports = opts.Ports
		}
		info.Attachments = append(info.Attachments, att)
		if err := save(pod.Dir, info); err != nil {
			return info, err
		}
		res, err := cni.AddNetworkList(ctx, list, att.runtimeConf(pod))
		if err != nil {
			return info, fmt.Errorf("joining network %q: %w", req.Name, err)
		}
		if err := att.fill(res, info.Netns); err != nil {
			return info, fmt.Errorf("network %q: %w", req.Name, err)
		}
		info.Attachments[i] = att
		if err := save(pod.Dir, info); err != nil {
			return info, err
		}
	}
	return info, nil
}

func (a Attachment) runtimeConf(pod Pod) *libcni.RuntimeConf {
	rt := &libcni.RuntimeConf{ContainerID: pod.UUID, NetNS: pod.Dir.Netns(), IfName: a.IfName, Args: a.Args}
	if len(a.Ports) > 0 {
		rt.CapabilityArgs = map[string]any{"portMappings": a.Ports}
	}
	return rt
}

// fill records the CNI result: the pod-side interface's address, gateway,
// routes and DNS, and its MAC and MTU as the kernel reports them.
func (a *Attachment) fill(res cnitypes.Result, nsPath string) error {
	r, err := types100.NewResultFromResult(res)
	if err != nil {
		return fmt.Errorf("reading CNI result: %w", err)
	}
	for _, ip := range r.IPs {
		if ip.Address.IP.To4() == nil {
			continue
		}
		if ip.Interface != nil && *ip.Interface < len(r.Interfaces) && r.Interfaces[*ip.Interface].Name != a.IfName {
			continue
		}
		a.IP = ip.Address.String()
		if ip.Gateway != nil {
			a.Gateway = ip.Gateway.String()
		}
		break
	}
	if a.IP == "" {
		return errors.New("the CNI plugins returned no IPv4 address for the pod")
	}
	a.DNS = r.DNS
	return netns.Do(nsPath, func() error {
		l, err := netlink.LinkByName(a.IfName)
		if err != nil {
			return fmt.Errorf("finding interface %s: %w", a.IfName, err)
		}
		a.MAC, a.MTU = l.Attrs().HardwareAddr.String(), l.Attrs().MTU
		// The routes as the plugins left them on the interface, not only
		// those of the CNI result: ptp, for one, replaces the subnet route
		// with one via the gateway, and a VM guest must do the same.
		routes, err := netlink.RouteList(l, netlink.FAMILY_V4)
		if err != nil {
			return fmt.Errorf("listing routes of %s: %w", a.IfName, err)
		}
		for _, rt := range routes {
			route := Route{Dst: "0.0.0.0/0"}
			if rt.Dst != nil {
				route.Dst = rt.Dst.String()
			}
			if rt.Gw != nil {
				route.GW = rt.Gw.String()
			}
			a.Routes = append(a.Routes, route)
		}
		// On-link routes first: a gateway must be reachable before a
		// route can use it.
		sort.SliceStable(a.Routes, func(i, j int) bool { return a.Routes[i].GW == "" && a.Routes[j].GW != "" })
		return nil
	})
}

// Teardown detaches the pod from every network it joined (CNI DEL, in
// reverse order) and removes its namespace. It is idempotent: gc calls it
// for pods in any state, including half-set-up ones.
func Teardown(ctx context.Context, pod Pod, opts Options) error {
	info, err := Load(pod.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return removeNetns(pod.Dir.Netns())
	}
	if err != nil {
		return err
	}
	cni := opts.cni(pod.DataDir)
	// A namespace that is gone (its mount lost, say, with the mount
	// namespace it was made in) is passed as "": the CNI spec has plugins
	// then release what they hold on the host (addresses, iptables rules)
	// without entering it.
	live := isNetns(pod.Dir.Netns())
	var errs []error
	for i := len(info.Attachments) - 1; i >= 0; i-- {
		a := info.Attachments[i]
		list, err := libcni.ConfListFromBytes(a.Config)
		if err != nil {
			errs = append(errs, fmt.Errorf("network %q: saved configuration: %w", a.NetName, err))
			continue
		}
		rt := a.runtimeConf(pod)
		if !live {
			rt.NetNS = ""
		}
		if err := cni.DelNetworkList(ctx, list, rt); err != nil {
			errs = append(errs, fmt.Errorf("leaving network %q: %w", a.NetName, err))
		}
	}
	if err := removeNetns(pod.Dir.Netns()); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Load reads a pod's net-info.json.
func Load(dir stage1.PodDir) (*Info, error) {
	b, err := os.ReadFile(dir.NetInfo())
	if err != nil {
		return nil, err
	}
	info := &Info{}
	if err := json.Unmarshal(b, info); err != nil {
		return nil, fmt.Errorf("corrupt %s: %w", dir.NetInfo(), err)
	}
	return info, nil
}

func save(dir stage1.PodDir, info *Info) error {
	b, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return err
	}
	tmp := dir.NetInfo() + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("saving network state: %w", err)
	}
	return os.Rename(tmp, dir.NetInfo())
}
