package network

import (
	"fmt"
	"strings"
)

// Mode says what kind of networking a pod asked for.
type Mode string

// The networking modes of --net.
const (
	// ModeNone is loopback only, in the pod's own namespace.
	ModeNone Mode = "none"
	// ModeHost shares the host's network namespace.
	ModeHost Mode = "host"
	// ModeCNI joins one or more CNI networks in the pod's own namespace.
	ModeCNI Mode = "cni"
)

// Request is one network of --net, with its CNI_ARGS.
type Request struct {
	Name string
	Args [][2]string
}

// Spec is a parsed --net value.
type Spec struct {
	Mode Mode
	Nets []Request
}

// ParseNets parses --net as rkt does: "" or "default" → the default
// network, "none", "host", or "name1,name2:ARG=VAL;ARG2=VAL2,…". "none" and
// "host" cannot be combined with other networks.
func ParseNets(s string) (Spec, error) {
	s = strings.TrimSpace(s)
	switch s {
	case "", "default":
		return Spec{Mode: ModeCNI, Nets: []Request{{Name: "default"}}}, nil
	case "none":
		return Spec{Mode: ModeNone}, nil
	case "host":
		return Spec{Mode: ModeHost}, nil
	}
	spec := Spec{Mode: ModeCNI}
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		name, args, _ := strings.Cut(strings.TrimSpace(part), ":")
		switch {
		case name == "":
			return Spec{}, fmt.Errorf("--net=%s: empty network name", s)
		case name == "none" || name == "host":
			return Spec{}, fmt.Errorf("--net=%s: %q cannot be combined with other networks", s, name)
		case name == "all":
			return Spec{}, fmt.Errorf("--net=all is not supported; name the networks")
		case seen[name]:
			return Spec{}, fmt.Errorf("--net=%s: network %q given twice", s, name)
		}
		seen[name] = true
		r := Request{Name: name}
		if args != "" {
			for _, kv := range strings.Split(args, ";") {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return Spec{}, fmt.Errorf("--net=%s: CNI argument %q is not NAME=VALUE", s, kv)
				}
				r.Args = append(r.Args, [2]string{k, v})
			}
		}
		spec.Nets = append(spec.Nets, r)
	}
	return spec, nil
}
