package stage1

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// PodResolvConf is the resolv.conf a pod's apps get: the one stage0 wrote
// for --dns, else fromNetwork (the DNS settings CNI returned), else "",
// meaning the apps keep their image's own.
func PodResolvConf(dir PodDir, fromNetwork string) (string, error) {
	b, err := os.ReadFile(dir.ResolvConf())
	if errors.Is(err, os.ErrNotExist) {
		return fromNetwork, nil
	}
	if err != nil {
		return "", fmt.Errorf("reading the pod's resolv.conf: %w", err)
	}
	return string(b), nil
}

// PodHosts is the /etc/hosts a pod's apps get: localhost, the pod's
// hostname on each of its addresses, then the --hosts-entry lines stage0
// wrote.
func PodHosts(dir PodDir, hostname string, ips []string) (string, error) {
	var b strings.Builder
	b.WriteString("127.0.0.1\tlocalhost localhost.localdomain\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	if len(ips) == 0 {
		ips = []string{"127.0.1.1"}
	}
	for _, ip := range ips {
		fmt.Fprintf(&b, "%s\t%s\n", ip, hostname)
	}
	extra, err := os.ReadFile(dir.Hosts())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("reading the pod's hosts entries: %w", err)
	}
	b.Write(extra)
	return b.String(), nil
}

// appsEtcFiles are the files of PodDir.AppsEtc, bind-mounted read-only over
// each app's /etc.
var appsEtcFiles = []string{"resolv.conf", "hosts"}

// WriteAppsEtc writes the resolv.conf and hosts every app of the pod gets
// (see AppsEtcFiles); an empty resolv keeps each image's own.
func (p PodDir) WriteAppsEtc(resolv, hosts string) error {
	if err := os.MkdirAll(p.AppsEtc(), 0o755); err != nil {
		return fmt.Errorf("writing the apps' /etc files: %w", err)
	}
	for name, content := range map[string]string{"resolv.conf": resolv, "hosts": hosts} {
		if content == "" {
			continue
		}
		if err := WriteFileAtomic(filepath.Join(p.AppsEtc(), name), []byte(content)); err != nil {
			return err
		}
	}
	return nil
}

// AppsEtcFiles returns the names of the files of AppsEtc that WriteAppsEtc
// wrote, for a flavor to bind-mount read-only over each app's /etc (see
// rkt.dev/rkt/stage1/apprun.SupervisorApp). A file it did not write leaves
// the image's own in place.
func (p PodDir) AppsEtcFiles() []string {
	var names []string
	for _, name := range appsEtcFiles {
		if fileExists(filepath.Join(p.AppsEtc(), name)) {
			names = append(names, name)
		}
	}
	return names
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
