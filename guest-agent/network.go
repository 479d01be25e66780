package main

import (
	"fmt"
	"net"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"rkt.dev/rkt/guest-agent/api"
)

// loopbackUp brings up lo: every pod has a loopback interface, whatever
// its networks (with --net=none it is the only one). It uses the
// SIOCSIFFLAGS ioctl rather than netlink: under TCG the first use of the
// netlink package costs about 14 ms of guest CPU (its code is translated
// on first run), for a pod that may never need netlink otherwise.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("bringing lo up: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("bringing lo up: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("reading the flags of lo: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bringing lo up: %w", err)
	}
	return nil
}

// ConfigureNetwork implements agent.System. The host ran CNI and joined a
// tap to each CNI interface; the guest NIC on that tap has the CNI
// interface's MAC, so the MAC says which configuration is whose, whatever
// order the kernel named the NICs in.
func (guestSystem) ConfigureNetwork(ifaces []*api.Interface) error {
	links, err := netlink.LinkList()
	if err != nil {
		return fmt.Errorf("listing interfaces: %w", err)
	}
	for _, ifc := range ifaces {
		var link netlink.Link
		for _, l := range links {
			if strings.EqualFold(l.Attrs().HardwareAddr.String(), ifc.Mac) {
				link = l
			}
		}
		if link == nil {
			return fmt.Errorf("no network interface with MAC %s", ifc.Mac)
		}
		name := link.Attrs().Name
		if ifc.Mtu > 0 {
			if err := netlink.LinkSetMTU(link, int(ifc.Mtu)); err != nil {
				return fmt.Errorf("setting the MTU of %s: %w", name, err)
			}
		}
		addr, err := netlink.ParseAddr(ifc.Address)
		if err != nil {
			return fmt.Errorf("address %q of %s: %w", ifc.Address, name, err)
		}
		if err := netlink.AddrAdd(link, addr); err != nil {
			return fmt.Errorf("adding %s to %s: %w", ifc.Address, name, err)
		}
		if err := netlink.LinkSetUp(link); err != nil {
			return fmt.Errorf("bringing %s up: %w", name, err)
		}
		if err := addRoutes(link, ifc.Routes); err != nil {
			return err
		}
	}
	return nil
}

// addRoutes adds an interface's routes: on-link ones (no gateway) scoped
// to the link, the others via their gateway.
func addRoutes(link netlink.Link, routes []*api.Route) error {
	for _, r := range routes {
		_, dst, err := net.ParseCIDR(r.Destination)
		if err != nil {
			return fmt.Errorf("route destination %q: %w", r.Destination, err)
		}
		route := &netlink.Route{LinkIndex: link.Attrs().Index, Dst: dst}
		if r.Gateway == "" {
			route.Scope = netlink.SCOPE_LINK
		} else if route.Gw = net.ParseIP(r.Gateway); route.Gw == nil {
			return fmt.Errorf("route gateway %q is not an IP address", r.Gateway)
		}
		if err := netlink.RouteReplace(route); err != nil {
			return fmt.Errorf("adding route %s via %q on %s: %w", r.Destination, r.Gateway, link.Attrs().Name, err)
		}
	}
	return nil
}
