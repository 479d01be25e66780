package network

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"rkt.dev/rkt/stage1"
)

// PodOptions returns the networking options of a pod started with flags:
// the configuration directory under --local-config and the port forwards
// of its manifest.
func PodOptions(p *stage1.Pod, flags stage1.RunFlags) (Options, error) {
	o := Options{}
	if flags.LocalConfig != "" {
		o.ConfDir = filepath.Join(flags.LocalConfig, "net.d")
	}
	ports, err := podPorts(p)
	if err != nil {
		return o, err
	}
	o.Ports = ports
	return o, nil
}

// podPorts resolves the pod manifest's exposed ports (--port=NAME:…) to the
// app ports of that name declared in the apps' image manifests.
func podPorts(p *stage1.Pod) ([]PortMapping, error) {
	var out []PortMapping
	for _, ep := range p.Manifest.Ports {
		pm := PortMapping{HostPort: int(ep.HostPort)}
		if ep.HostIP != nil {
			pm.HostIP = ep.HostIP.String()
		}
		if ep.PodPort != nil {
			pm.ContainerPort, pm.Protocol = int(ep.PodPort.Port), ep.PodPort.Protocol
		} else {
			for _, a := range p.Manifest.Apps {
				if a.App == nil {
					continue
				}
				for _, port := range a.App.Ports {
					if port.Name == ep.Name {
						pm.ContainerPort, pm.Protocol = int(port.Port), port.Protocol
					}
				}
			}
		}
		if pm.ContainerPort == 0 {
			return nil, fmt.Errorf("--port=%s: no app of the pod declares a port named %s", ep.Name, ep.Name)
		}
		out = append(out, pm)
	}
	return out, nil
}

// PodInfo identifies a pod for Setup and Teardown from its directory.
func PodInfo(dir stage1.PodDir, uuid string) Pod {
	return Pod{UUID: uuid, Dir: dir, DataDir: dir.DataDir()}
}

// TeardownPod is Teardown for a stage1's gc entrypoint. It needs no
// configuration: what setup used is saved in net-info.json.
func TeardownPod(ctx context.Context, dir stage1.PodDir, uuid string) error {
	return Teardown(ctx, PodInfo(dir, uuid), Options{})
}

// ResolvConf renders the DNS settings CNI returned (from the first network
// that returned any) as resolv.conf, or "" if none did.
func ResolvConf(info *Info) string {
	for _, a := range info.Attachments {
		if len(a.DNS.Nameservers) == 0 {
			continue
		}
		var b strings.Builder
		if a.DNS.Domain != "" {
			fmt.Fprintf(&b, "domain %s\n", a.DNS.Domain)
		}
		for _, ns := range a.DNS.Nameservers {
			fmt.Fprintf(&b, "nameserver %s\n", ns)
		}
		if len(a.DNS.Search) > 0 {
			fmt.Fprintf(&b, "search %s\n", strings.Join(a.DNS.Search, " "))
		}
		if len(a.DNS.Options) > 0 {
			fmt.Fprintf(&b, "options %s\n", strings.Join(a.DNS.Options, " "))
		}
		return b.String()
	}
	return ""
}
