package network

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"rkt.dev/rkt/internal/netns"
)

// Tap is a tap device joined to one of the pod's CNI interfaces, for a VM.
type Tap struct {
	// Name is the tap device in the pod's network namespace.
	Name string
	// Attachment is the CNI interface it is joined to; the guest takes
	// its MAC, address, routes and MTU.
	Attachment Attachment
}

// AttachTaps creates, in the pod's network namespace, one tap device per
// CNI interface and joins the two with tc mirred redirects in both
// directions: every frame arriving on the CNI interface leaves through the
// tap (to the VM) and every frame from the VM leaves through the CNI
// interface. The CNI interface keeps its addresses, so the host, CNI
// plugins (port maps, firewalls) and `rkt status` see the pod as they would
// a container; the guest uses the same MAC and address. This works with any
// CNI plugin, unlike the original rkt, which rewired ptp, bridge and
// macvlan networks by hand.
func AttachTaps(info *Info) ([]Tap, error) {
	var taps []Tap
	err := netns.Do(info.Netns, func() error {
		for i, a := range info.Attachments {
			name := "tap" + strconv.Itoa(i)
			if err := attachTap(a.IfName, name); err != nil {
				return fmt.Errorf("joining a tap device to %s: %w", a.IfName, err)
			}
			taps = append(taps, Tap{Name: name, Attachment: a})
		}
		return nil
	})
	return taps, err
}

func attachTap(ifName, tapName string) error {
	cni, err := netlink.LinkByName(ifName)
	if err != nil {
		return err
	}
	if l, err := netlink.LinkByName(tapName); err == nil {
		// Left by an earlier run of the same pod.
		if err := netlink.LinkDel(l); err != nil {
			return fmt.Errorf("removing stale %s: %w", tapName, err)
		}
	}
	tap := &netlink.Tuntap{
		LinkAttrs: netlink.LinkAttrs{Name: tapName, MTU: cni.Attrs().MTU},
		Mode:      netlink.TUNTAP_MODE_TAP,
		Flags:     netlink.TUNTAP_DEFAULTS,
	}
	if err := netlink.LinkAdd(tap); err != nil {
		return fmt.Errorf("creating %s: %w", tapName, err)
	}
	t, err := netlink.LinkByName(tapName)
	if err != nil {
		return err
	}
	if err := netlink.LinkSetUp(t); err != nil {
		return fmt.Errorf("bringing %s up: %w", tapName, err)
	}
	if err := redirect(cni, t); err != nil {
		return err
	}
	return redirect(t, cni)
}

// redirect sends every frame received on from out of to.
func redirect(from, to netlink.Link) error {
	ingress := &netlink.Ingress{QdiscAttrs: netlink.QdiscAttrs{
		LinkIndex: from.Attrs().Index, Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_INGRESS,
	}}
	if err := netlink.QdiscAdd(ingress); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("adding an ingress qdisc to %s: %w", from.Attrs().Name, err)
	}
	filter := &netlink.U32{
		FilterAttrs: netlink.FilterAttrs{
			LinkIndex: from.Attrs().Index, Parent: netlink.MakeHandle(0xffff, 0),
			Priority: 1, Protocol: unix.ETH_P_ALL,
		},
		Actions: []netlink.Action{&netlink.MirredAction{
			ActionAttrs:  netlink.ActionAttrs{Action: netlink.TC_ACT_STOLEN},
			MirredAction: netlink.TCA_EGRESS_REDIR,
			Ifindex:      to.Attrs().Index,
		}},
	}
	if err := netlink.FilterAdd(filter); err != nil {
		return fmt.Errorf("redirecting %s to %s: %w", from.Attrs().Name, to.Attrs().Name, err)
	}
	return nil
}
