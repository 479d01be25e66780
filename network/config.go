package network

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/containernetworking/cni/libcni"
)

// DefaultPluginDirs is where Debian's containernetworking-plugins package
// installs the CNI plugins.
var DefaultPluginDirs = []string{"/usr/lib/cni"}

// cniVersion is the CNI spec version of the built-in networks: the newest
// that Debian 12's plugins (1.1.1) implement.
const cniVersion = "1.0.0"

// builtins are the networks every rkt has, as in the original rkt: default
// gives the pod a route out through IP masquerading; default-restricted
// only reaches the host.
var builtins = map[string]string{
	"default": `{
  "cniVersion": "` + cniVersion + `", "name": "default",
  "plugins": [
    {"type": "ptp", "ipMasq": true,
     "ipam": {"type": "host-local", "subnet": "172.16.28.0/24", "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true}
  ]}`,
	"default-restricted": `{
  "cniVersion": "` + cniVersion + `", "name": "default-restricted",
  "plugins": [
    {"type": "ptp", "ipMasq": false,
     "ipam": {"type": "host-local", "subnet": "172.31.0.0/16"}},
    {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true}
  ]}`,
}

// loadNetwork finds a network's configuration: a *.conf or *.conflist in
// confDir whose "name" matches (files sorted by name, first match wins, as
// in rkt), else a built-in. The result has host-local IPAM state redirected
// under stateDir, so every rkt data directory keeps its own leases and gc
// can account for them.
func loadNetwork(confDir, stateDir, name string) (*libcni.NetworkConfigList, error) {
	raw, err := findConf(confDir, name)
	if err != nil {
		return nil, err
	}
	if raw == nil {
		b, ok := builtins[name]
		if !ok {
			return nil, fmt.Errorf("network %q not found: there is no built-in network of that name and no configuration file in %s declares it", name, confDir)
		}
		raw = []byte(b)
	}
	raw, err = withIPAMDir(raw, filepath.Join(stateDir, "ipam"))
	if err != nil {
		return nil, fmt.Errorf("network %q: %w", name, err)
	}
	list, err := libcni.ConfListFromBytes(raw)
	if err != nil {
		return nil, fmt.Errorf("network %q: invalid configuration: %w", name, err)
	}
	return list, nil
}

// findConf returns the configuration of network name from confDir as
// conflist JSON, or nil if no file declares it. A single-plugin .conf file
// is wrapped into a list, so the rest of rkt deals with lists only.
func findConf(confDir, name string) ([]byte, error) {
	if confDir == "" {
		return nil, nil
	}
	files, err := libcni.ConfFiles(confDir, []string{".conf", ".conflist", ".json"})
	if err != nil {
		return nil, fmt.Errorf("reading network configurations in %s: %w", confDir, err)
	}
	sort.Strings(files)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("network configuration %s: %w", f, err)
		}
		var conf map[string]any
		if err := json.Unmarshal(b, &conf); err != nil {
			return nil, fmt.Errorf("network configuration %s: invalid JSON: %w", f, err)
		}
		if conf["name"] != name {
			continue
		}
		if _, isList := conf["plugins"]; isList {
			return b, nil
		}
		plugin := map[string]any{}
		for k, v := range conf {
			if k != "name" && k != "cniVersion" {
				plugin[k] = v
			}
		}
		return json.Marshal(map[string]any{"cniVersion": conf["cniVersion"], "name": name, "plugins": []any{plugin}})
	}
	return nil, nil
}

// withIPAMDir sets dataDir on every host-local IPAM section that has none.
func withIPAMDir(raw []byte, dir string) ([]byte, error) {
	var list map[string]any
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	plugins, ok := list["plugins"].([]any)
	if !ok {
		return nil, errors.New(`configuration has no "plugins" list`)
	}
	for _, p := range plugins {
		pm, _ := p.(map[string]any)
		ipam, _ := pm["ipam"].(map[string]any)
		if ipam != nil && ipam["type"] == "host-local" && ipam["dataDir"] == nil {
			ipam["dataDir"] = dir
		}
	}
	return json.Marshal(list)
}

// stateDirOf is where a data directory keeps CNI state (IPAM leases, the
// CNI result cache).
func stateDirOf(dataDir string) string { return filepath.Join(dataDir, "networks") }
