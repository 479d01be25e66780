package config

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Auth is the merged auth.d configuration: the credentials rkt sends to
// image servers. Two kinds of file live in auth.d:
//
//	{"rktKind": "auth", "rktVersion": "v1", "domains": ["example.com"],
//	 "type": "basic", "credentials": {"user": "u", "password": "p"}}
//	{"rktKind": "auth", "rktVersion": "v1", "domains": ["example.com"],
//	 "type": "oauth", "credentials": {"token": "t"}}
//	{"rktKind": "dockerAuth", "rktVersion": "v1", "registries": ["quay.io"],
//	 "credentials": {"user": "u", "password": "p"}}
//
// A domain or registry named again in a later directory overrides the
// earlier one; naming it twice in one directory is an error, since it is
// not clear which file should win.
type Auth struct {
	// HTTP maps a host ("example.com", or "example.com:8443") to the
	// credentials of HTTPS requests (ACIs, signatures, keys, discovery).
	HTTP map[string]HTTPCredentials
	// Docker maps a registry ("index.docker.io", "127.0.0.1:5000") to the
	// credentials for it.
	Docker map[string]BasicCredentials
}

// BasicCredentials are a user name and password.
type BasicCredentials struct {
	User     string `json:"user"`
	Password string `json:"password"`
}

// HTTPCredentials are the credentials of one "auth" domain.
type HTTPCredentials struct {
	// Type is "basic" or "oauth".
	Type  string
	Basic BasicCredentials
	Token string
}

// Header is the value of the Authorization header for these credentials.
func (c HTTPCredentials) Header() string {
	if c.Type == "oauth" {
		return "Bearer " + c.Token
	}
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(c.Basic.User+":"+c.Basic.Password))
}

// ForHost returns the credentials for an HTTPS request to host (a URL's
// host, with or without a port).
func (a Auth) ForHost(host string) (HTTPCredentials, bool) {
	if c, ok := a.HTTP[host]; ok {
		return c, true
	}
	if i := strings.LastIndexByte(host, ':'); i > 0 && !strings.HasSuffix(host, "]") {
		c, ok := a.HTTP[host[:i]]
		return c, ok
	}
	return HTTPCredentials{}, false
}

// ForRegistry returns the credentials for a Docker registry, named as
// go-containerregistry names it ("index.docker.io" for Docker Hub).
func (a Auth) ForRegistry(registry string) (BasicCredentials, bool) {
	c, ok := a.Docker[normalizeRegistry(registry)]
	return c, ok
}

// normalizeRegistry gives Docker Hub's many names one spelling.
func normalizeRegistry(r string) string {
	switch r = strings.ToLower(r); r {
	case "docker.io", "registry-1.docker.io", "registry.hub.docker.com", "https://index.docker.io/v1/":
		return "index.docker.io"
	}
	return r
}

type authFile struct {
	header
	Domains     []string `json:"domains"`
	Type        string   `json:"type"`
	Registries  []string `json:"registries"`
	Credentials struct {
		User     string `json:"user"`
		Password string `json:"password"`
		Token    string `json:"token"`
	} `json:"credentials"`
}

func (a *Auth) loadDir(dir string) error {
	// Names seen in this directory, with the file that named them.
	seen := map[string]string{}
	return eachFile(dir, func(path string, _ header, b []byte) error { return a.loadFile(path, b, seen) })
}

func (a *Auth) loadFile(path string, b []byte, seen map[string]string) error {
	var f authFile
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("invalid JSON: %w", err)
	}
	claim := func(kind, name string) error {
		key := kind + " " + name
		if other, ok := seen[key]; ok {
			return fmt.Errorf("%s %q is also configured in %s; keep it in one file", kind, name, other)
		}
		seen[key] = path
		return nil
	}
	switch f.Kind {
	case "auth":
		c := HTTPCredentials{Type: f.Type, Token: f.Credentials.Token,
			Basic: BasicCredentials{User: f.Credentials.User, Password: f.Credentials.Password}}
		switch {
		case f.Type == "basic" && f.Credentials.User == "":
			return errors.New(`type "basic" needs credentials.user`)
		case f.Type == "oauth" && f.Credentials.Token == "":
			return errors.New(`type "oauth" needs credentials.token`)
		case f.Type != "basic" && f.Type != "oauth":
			return fmt.Errorf("unsupported auth type %q (valid: basic, oauth)", f.Type)
		case len(f.Domains) == 0:
			return errors.New("no domains given")
		}
		for _, d := range f.Domains {
			d = strings.ToLower(d)
			if err := claim("domain", d); err != nil {
				return err
			}
			if a.HTTP == nil {
				a.HTTP = map[string]HTTPCredentials{}
			}
			a.HTTP[d] = c
		}
	case "dockerAuth":
		if len(f.Registries) == 0 {
			return errors.New("no registries given")
		}
		if f.Credentials.User == "" {
			return errors.New("dockerAuth needs credentials.user")
		}
		for _, r := range f.Registries {
			r = normalizeRegistry(r)
			if err := claim("registry", r); err != nil {
				return err
			}
			if a.Docker == nil {
				a.Docker = map[string]BasicCredentials{}
			}
			a.Docker[r] = BasicCredentials{User: f.Credentials.User, Password: f.Credentials.Password}
		}
	default:
		return fmt.Errorf("rktKind %q does not belong in an auth.d directory (valid: auth, dockerAuth)", f.Kind)
	}
	return nil
}
