package run

import (
	"fmt"
	"net"
	"os"
	"strings"

	"rkt.dev/rkt/stage1"
)

// hostResolvConf and hostHosts are the host's files that --dns=host and
// --hosts-entry=host copy.
const (
	hostResolvConf = "/etc/resolv.conf"
	hostHosts      = "/etc/hosts"
)

// resolvConf renders --dns, --dns-search, --dns-opt and --dns-domain as the
// apps' resolv.conf. ok is false when the user gave none of them (the
// stage1 then uses what the network returned, or the image's own file).
func (d DNSOptions) resolvConf() (content string, ok bool, err error) {
	if len(d.Servers) == 0 && len(d.Search) == 0 && len(d.Options) == 0 && d.Domain == "" {
		return "", false, nil
	}
	switch {
	case len(d.Servers) == 1 && d.Servers[0] == "host":
		b, err := os.ReadFile(hostResolvConf)
		if err != nil {
			return "", false, fmt.Errorf("--dns=host: %w", err)
		}
		return string(b), true, nil
	case len(d.Servers) == 1 && d.Servers[0] == "none":
		return "", false, nil
	}
	var b strings.Builder
	if d.Domain != "" {
		fmt.Fprintf(&b, "domain %s\n", d.Domain)
	}
	for _, s := range d.Servers {
		if net.ParseIP(s) == nil {
			return "", false, fmt.Errorf("--dns=%s: not an IP address (or host, or none)", s)
		}
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if len(d.Search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(d.Search, " "))
	}
	if len(d.Options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(d.Options, " "))
	}
	return b.String(), true, nil
}

// hosts renders --hosts-entry as lines for the apps' /etc/hosts.
func (d DNSOptions) hosts() (string, error) {
	if len(d.HostsEntries) == 1 && d.HostsEntries[0] == "host" {
		b, err := os.ReadFile(hostHosts)
		if err != nil {
			return "", fmt.Errorf("--hosts-entry=host: %w", err)
		}
		return string(b), nil
	}
	var b strings.Builder
	for _, e := range d.HostsEntries {
		ip, name, ok := strings.Cut(e, "=")
		if !ok || net.ParseIP(ip) == nil || name == "" {
			return "", fmt.Errorf("--hosts-entry=%s: want IP=HOSTNAME (or host)", e)
		}
		fmt.Fprintf(&b, "%s\t%s\n", ip, name)
	}
	return b.String(), nil
}

// write writes the pod's resolv.conf and hosts entries for stage1.
func (d DNSOptions) write(dir stage1.PodDir) error {
	rc, ok, err := d.resolvConf()
	if err != nil {
		return err
	}
	if ok {
		if err := os.WriteFile(dir.ResolvConf(), []byte(rc), 0o644); err != nil {
			return fmt.Errorf("writing the pod's resolv.conf: %w", err)
		}
	}
	h, err := d.hosts()
	if err != nil {
		return err
	}
	if h != "" {
		if err := os.WriteFile(dir.Hosts(), []byte(h), 0o644); err != nil {
			return fmt.Errorf("writing the pod's hosts entries: %w", err)
		}
	}
	return nil
}
