// Package config reads rkt's stage0 configuration: JSON files of the kinds
// "paths" (paths.d), "stage1" (stage1.d), and "auth" and "dockerAuth"
// (auth.d) from the system, local and user configuration directories.
//
// Directories are read in that order and later ones override earlier ones
// field by field, as in the original rkt, so a distribution can ship
// defaults in /usr/lib/rkt and an operator can override one field in
// /etc/rkt. Each file carries rktKind and rktVersion ("v1"); unknown kinds
// in a directory are an error so that a typo does not silently disable a
// setting.
package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// Dirs are the configuration directories, lowest precedence first.
type Dirs struct {
	System string
	Local  string
	User   string
}

// Paths is the merged paths.d configuration.
type Paths struct {
	Data         string `json:"data,omitempty"`
	Stage1Images string `json:"stage1-images,omitempty"`
}

// Stage1 is the merged stage1.d configuration: the default stage1 image.
type Stage1 struct {
	Name     string `json:"name,omitempty"`
	Version  string `json:"version,omitempty"`
	Location string `json:"location,omitempty"`
}

// Config is the merged stage0 configuration, as `rkt config` prints it.
type Config struct {
	Paths  Paths  `json:"paths"`
	Stage1 Stage1 `json:"stage1"`
	// Auth holds credentials, which `rkt config` must not print.
	Auth Auth `json:"-"`
	// Dirs are the directories the configuration was read from; the trust
	// store lives in them too.
	Dirs Dirs `json:"-"`
}

type header struct {
	Kind    string `json:"rktKind"`
	Version string `json:"rktVersion"`
}

// Load reads and merges the configuration. Missing directories are fine;
// unreadable or invalid files are errors naming the file.
func Load(d Dirs) (*Config, error) {
	c := &Config{Dirs: d}
	for _, dir := range []string{d.System, d.Local, d.User} {
		if dir == "" {
			continue
		}
		if err := c.Auth.loadDir(filepath.Join(dir, "auth.d")); err != nil {
			return nil, err
		}
		if err := c.loadDir(filepath.Join(dir, "paths.d"), "paths"); err != nil {
			return nil, err
		}
		if err := c.loadDir(filepath.Join(dir, "stage1.d"), "stage1"); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *Config) loadDir(dir, kind string) error {
	return eachFile(dir, func(_ string, h header, b []byte) error { return c.loadFile(h, b, kind) })
}

// eachFile hands every *.json file of dir, in name order, to load with its
// header, once the file is read, parses and declares rktVersion v1. Any
// error names the file.
func eachFile(dir string, load func(path string, h header, b []byte) error) error {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return err
	}
	sort.Strings(files)
	for _, f := range files {
		if err := readFile(f, load); err != nil {
			return fmt.Errorf("configuration file %s: %w", f, err)
		}
	}
	return nil
}

func readFile(path string, load func(path string, h header, b []byte) error) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var h header
	if err := json.Unmarshal(b, &h); err != nil {
		return fmt.Errorf("invalid JSON: %w", err)
	}
	if h.Version != "v1" {
		return fmt.Errorf("unsupported rktVersion %q (want \"v1\")", h.Version)
	}
	return load(path, h, b)
}

func (c *Config) loadFile(h header, b []byte, kind string) error {
	if h.Kind != kind {
		return fmt.Errorf("rktKind %q does not belong in a %s.d directory", h.Kind, kind)
	}
	switch kind {
	case "paths":
		var p Paths
		if err := json.Unmarshal(b, &p); err != nil {
			return fmt.Errorf("invalid paths configuration: %w", err)
		}
		c.Paths.Data = override(c.Paths.Data, p.Data)
		c.Paths.Stage1Images = override(c.Paths.Stage1Images, p.Stage1Images)
	case "stage1":
		var s Stage1
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("invalid stage1 configuration: %w", err)
		}
		if (s.Name == "") != (s.Version == "") {
			return errors.New("stage1 configuration needs both name and version, or neither")
		}
		c.Stage1.Name = override(c.Stage1.Name, s.Name)
		c.Stage1.Version = override(c.Stage1.Version, s.Version)
		c.Stage1.Location = override(c.Stage1.Location, s.Location)
	}
	return nil
}

func override(old, new string) string {
	if new != "" {
		return new
	}
	return old
}
