package main

import (
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"rkt.dev/rkt/network"
	"rkt.dev/rkt/stage0/pod"
)

func init() { register(newListCommand) }

// podInfo is a pod as `rkt list --format=json` and `rkt status
// --format=json` print it; the field names are those of rkt's v1.Pod.
type podInfo struct {
	Name      string    `json:"name"`
	State     string    `json:"state"`
	Networks  []netInfo `json:"networks,omitempty"`
	AppNames  []string  `json:"app_names,omitempty"`
	Apps      []appInfo `json:"apps,omitempty"`
	CreatedAt int64     `json:"created_at,omitempty"`
	StartedAt int64     `json:"started_at,omitempty"`
	PID       int       `json:"pid,omitempty"`
}

// netInfo is one network the pod joined.
type netInfo struct {
	NetName string `json:"netName"`
	IP      string `json:"ip"`
}

// appInfo is one app of a pod.
type appInfo struct {
	Name      string `json:"name"`
	State     string `json:"state"`
	ImageName string `json:"image_name,omitempty"`
	ImageID   string `json:"image_id"`
	ExitCode  *int   `json:"exit_code,omitempty"`
}

func (p podInfo) exited() bool {
	switch pod.State(p.State) {
	case pod.Exited, pod.ExitedGarbage, pod.ExitedDeleting:
		return true
	}
	return false
}

func (p podInfo) networkString() string {
	var parts []string
	for _, n := range p.Networks {
		parts = append(parts, n.NetName+":ip4="+n.IP)
	}
	return strings.Join(parts, ",")
}

// describePod gathers what list and status show about a pod.
func describePod(p *pod.Pod) podInfo {
	info := podInfo{Name: p.UUID, State: string(p.State())}
	if t := p.CreatedAt(); !t.IsZero() {
		info.CreatedAt = t.UnixNano()
	}
	if t := p.StartedAt(); !t.IsZero() {
		info.StartedAt = t.UnixNano()
	}
	if p.State() == pod.Running {
		info.PID, _ = p.Dir().ReadPID()
	}
	if ni, err := network.Load(p.Dir()); err == nil {
		for _, a := range ni.Attachments {
			if ip := a.IPv4(); ip != "" {
				info.Networks = append(info.Networks, netInfo{NetName: a.NetName, IP: ip})
			}
		}
	}
	pm, err := p.Manifest()
	if err != nil {
		return info
	}
	for _, ra := range pm.Apps {
		a := appInfo{Name: ra.Name.String(), ImageID: ra.Image.ID.String(), State: appState(info)}
		if ra.Image.Name != nil {
			a.ImageName = ra.Image.Name.String()
		}
		if p.AfterRun() {
			if code, err := p.Dir().ReadExitStatus(ra.Name); err == nil {
				c := code
				a.ExitCode = &c
				a.State = "exited"
			}
		}
		info.AppNames = append(info.AppNames, a.Name)
		info.Apps = append(info.Apps, a)
	}
	return info
}

func appState(p podInfo) string {
	switch pod.State(p.State) {
	case pod.Running:
		return "running"
	case pod.Prepared, pod.Preparing, pod.Embryo:
		return "created"
	}
	if p.exited() {
		return "exited"
	}
	return "unknown"
}

func newListCommand(g *globalOptions) *cobra.Command {
	var (
		full, noLegend bool
		format         string
	)
	c := &cobra.Command{
		Use:   "list",
		Short: "List pods",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := g.dataDir(cmd)
			if err != nil {
				return err
			}
			pods, err := pod.List(dir)
			if err != nil {
				return err
			}
			infos := []podInfo{}
			for _, p := range pods {
				infos = append(infos, describePod(p))
			}
			switch format {
			case "json", "json-pretty":
				return printJSON(os.Stdout, infos, format == "json-pretty")
			case "", "text":
			default:
				return fmt.Errorf("unknown --format %q (want text, json or json-pretty)", format)
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 8, 2, ' ', 0)
			if !noLegend {
				if full {
					fmt.Fprintln(tw, "UUID\tAPP\tIMAGE NAME\tIMAGE ID\tSTATE\tCREATED\tSTARTED\tNETWORKS")
				} else {
					fmt.Fprintln(tw, "UUID\tAPP\tIMAGE NAME\tSTATE\tCREATED\tSTARTED\tNETWORKS")
				}
			}
			for _, p := range infos {
				printPodRows(tw, p, full)
			}
			return tw.Flush()
		},
	}
	c.Flags().BoolVar(&full, "full", false, "show full UUIDs, image IDs and absolute times")
	c.Flags().BoolVar(&noLegend, "no-legend", false, "do not print the header line")
	c.Flags().StringVar(&format, "format", "", "output format: text, json or json-pretty")
	return c
}

// printPodRows prints a pod's table row, and a continuation row for each
// further app.
func printPodRows(tw *tabwriter.Writer, p podInfo, full bool) {
	uuid := p.Name
	if !full && len(uuid) > 8 {
		uuid = uuid[:8]
	}
	apps := p.Apps
	if len(apps) == 0 {
		apps = []appInfo{{Name: "-", ImageName: "-"}}
	}
	for i, a := range apps {
		id, state, created, started, nets := "", "", "", "", ""
		if i == 0 {
			id, state = uuid, p.State
			created, started = listTime(p.CreatedAt, full), listTime(p.StartedAt, full)
			nets = p.networkString()
		}
		if full {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", id, a.Name, a.ImageName, a.ImageID, state, created, started, nets)
		} else {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", id, a.Name, a.ImageName, state, created, started, nets)
		}
	}
}

// listTime shows a time relative to now ("5 seconds ago"), or absolute
// with --full.
func listTime(ns int64, full bool) string {
	if ns == 0 {
		return ""
	}
	if full {
		return fmtTime(ns)
	}
	return timeAgo(time.Since(time.Unix(0, ns)))
}
