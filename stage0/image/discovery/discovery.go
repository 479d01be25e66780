// Package discovery implements appc meta discovery: it turns an image name
// such as example.com/app:v1.0 into the URLs of the image and of its
// signature, and a name prefix into the URLs of the keys that sign it.
//
// Discovery fetches https://{name}?ac-discovery=1 and reads its HTML meta
// tags:
//
//	<meta name="ac-discovery" content="example.com https://example.com/{name}-{version}-{os}-{arch}.{ext}">
//	<meta name="ac-discovery-pubkeys" content="example.com https://example.com/pubkeys.gpg">
//
// A tag applies when the name starts with its prefix. Templates are
// rendered with {name}, {version} (default "latest"), {os} ("linux"),
// {arch} ("amd64"), any other label, and {ext} ("aci", then "aci.asc");
// a template with a placeholder left over is skipped. When a page fails
// (a 4xx, say) or has no applicable tag, discovery retries with the
// parent path: example.com/group/app, then example.com/group, then
// example.com. Plain HTTP is used only when the caller allows it.
package discovery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// maxPage bounds a discovery page read into memory.
const maxPage = 1 << 20

// Endpoint is where a discovered image and its signature are.
type Endpoint struct {
	ACI, Signature string
}

// Client makes discovery requests.
type Client struct {
	// HTTP is the client; nil means http.DefaultClient.
	HTTP *http.Client
	// Header, if set, returns extra headers (credentials) for a request
	// to host; it is only asked for HTTPS requests.
	Header func(host string) http.Header
	// InsecureHTTP lets discovery fall back to plain HTTP.
	InsecureHTTP bool
}

// Labels returns the labels discovery renders templates with: labels,
// with the appc defaults for version, os and arch.
func Labels(labels map[string]string) map[string]string {
	out := map[string]string{"version": "latest", "os": "linux", "arch": "amd64"}
	for k, v := range labels {
		if v != "" {
			out[k] = v
		}
	}
	return out
}

// ACI discovers the endpoints of the image name with labels (see Labels).
func (c *Client) ACI(ctx context.Context, name string, labels map[string]string) ([]Endpoint, error) {
	vars := Labels(labels)
	var eps []Endpoint
	err := c.walk(ctx, name, func(metas []meta) bool {
		for _, m := range metas {
			if m.name != "ac-discovery" || !strings.HasPrefix(name, m.prefix) {
				continue
			}
			aci, ok1 := render(m.url, name, vars, "aci")
			asc, ok2 := render(m.url, name, vars, "aci.asc")
			if ok1 && ok2 {
				eps = append(eps, Endpoint{ACI: aci, Signature: asc})
			}
		}
		return len(eps) > 0
	})
	return eps, err
}

// PublicKeys discovers the URLs of the keys that sign images called name.
func (c *Client) PublicKeys(ctx context.Context, name string) ([]string, error) {
	var keys []string
	err := c.walk(ctx, name, func(metas []meta) bool {
		for _, m := range metas {
			if m.name == "ac-discovery-pubkeys" && strings.HasPrefix(name, m.prefix) {
				keys = append(keys, m.url)
			}
		}
		return len(keys) > 0
	})
	return keys, err
}

var leftover = regexp.MustCompile(`\{[^{}]*\}`)

// render fills a template; ok is false if a placeholder is left over.
func render(tpl, name string, vars map[string]string, ext string) (string, bool) {
	r := strings.ReplaceAll(tpl, "{name}", name)
	keys := make([]string, 0, len(vars))
	for k := range vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k != "name" {
			r = strings.ReplaceAll(r, "{"+k+"}", vars[k])
		}
	}
	r = strings.ReplaceAll(r, "{ext}", ext)
	return r, !leftover.MatchString(r)
}

// walk fetches the discovery page of name and then of its parents until
// found accepts one.
func (c *Client) walk(ctx context.Context, name string, found func([]meta) bool) error {
	var attempts []string
	for pre := name; pre != ""; pre = parent(pre) {
		metas, err := c.page(ctx, pre)
		if err == nil && found(metas) {
			return nil
		}
		if err == nil {
			err = errors.New("no matching meta tags")
		}
		attempts = append(attempts, err.Error())
		if ctx.Err() != nil {
			break
		}
	}
	return fmt.Errorf("discovery of %s failed: %s", name, strings.Join(attempts, "; "))
}

func parent(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return ""
	}
	return p[:i]
}

// page fetches and parses one discovery page.
func (c *Client) page(ctx context.Context, pre string) ([]meta, error) {
	metas, err := c.get(ctx, "https", pre)
	if err != nil && c.InsecureHTTP {
		metas, err = c.get(ctx, "http", pre)
	}
	return metas, err
}

func (c *Client) get(ctx context.Context, scheme, pre string) ([]meta, error) {
	u := &url.URL{Scheme: scheme, RawQuery: "ac-discovery=1"}
	host, p, _ := strings.Cut(pre, "/")
	u.Host, u.Path = host, "/"+p
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	if scheme == "https" && c.Header != nil {
		for k, v := range c.Header(u.Host) {
			req.Header[k] = v
		}
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", u, resp.Status)
	}
	return parseMeta(io.LimitReader(resp.Body, maxPage)), nil
}

// meta is one discovery meta tag.
type meta struct {
	name, prefix, url string
}

// parseMeta reads the ac-discovery and ac-discovery-pubkeys meta tags of
// an HTML page.
func parseMeta(r io.Reader) []meta {
	var out []meta
	z := html.NewTokenizer(r)
	for {
		switch z.Next() {
		case html.ErrorToken:
			return out
		case html.StartTagToken, html.SelfClosingTagToken:
			tok := z.Token()
			if tok.DataAtom != atom.Meta {
				continue
			}
			var name, content string
			for _, a := range tok.Attr {
				switch a.Key {
				case "name":
					name = a.Val
				case "content":
					content = a.Val
				}
			}
			if name != "ac-discovery" && name != "ac-discovery-pubkeys" {
				continue
			}
			f := strings.Fields(content)
			if len(f) == 2 {
				out = append(out, meta{name: name, prefix: f[0], url: f[1]})
			}
		}
	}
}
