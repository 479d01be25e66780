package discovery

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// newServer serves pages (path → HTML) over HTTPS on 127.0.0.1 and
// returns a client that reaches it for any host name, trusting its
// certificate (which is valid for example.com).
func newServer(t *testing.T, pages map[string]string) (*Client, *[]string) {
	t.Helper()
	var paths []string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.URL.Path+"?"+r.URL.RawQuery+" auth="+r.Header.Get("Authorization"))
		page, ok := pages[r.URL.Path]
		if !ok || r.URL.Query().Get("ac-discovery") != "1" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(page))
	}))
	t.Cleanup(srv.Close)
	tr := srv.Client().Transport.(*http.Transport).Clone()
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, srv.Listener.Addr().String())
	}
	return &Client{HTTP: &http.Client{Transport: tr}}, &paths
}

func TestACI(t *testing.T) {
	c, paths := newServer(t, map[string]string{
		"/group": `<html><head>
			<meta name="ac-discovery" content="example.org https://wrong.example/{name}.{ext}">
			<meta name="ac-discovery" content="example.com/group https://example.com/{name}-{version}-{os}-{arch}.{ext}">
			<meta name="ac-discovery" content="example.com/group https://example.com/{unknown}.{ext}">
			<meta name="ac-discovery" content="example.com https://mirror.example.com/{name}/{channel}.{ext}">
			<meta name="ac-discovery-pubkeys" content="example.com/group https://example.com/keys.asc">
		</head></html>`,
	})
	c.Header = func(host string) http.Header { return http.Header{"Authorization": {"Bearer " + host}} }
	eps, err := c.ACI(t.Context(), "example.com/group/app", map[string]string{"version": "1.0", "channel": "stable"})
	if err != nil {
		t.Fatal(err)
	}
	want := []Endpoint{
		{"https://example.com/example.com/group/app-1.0-linux-amd64.aci", "https://example.com/example.com/group/app-1.0-linux-amd64.aci.asc"},
		{"https://mirror.example.com/example.com/group/app/stable.aci", "https://mirror.example.com/example.com/group/app/stable.aci.asc"},
	}
	if !slices.Equal(eps, want) {
		t.Errorf("endpoints = %v\nwant %v", eps, want)
	}
	// The page of the name itself was tried first, then its parent.
	wantPaths := []string{"/group/app?ac-discovery=1 auth=Bearer example.com", "/group?ac-discovery=1 auth=Bearer example.com"}
	if !slices.Equal(*paths, wantPaths) {
		t.Errorf("requests = %v, want %v", *paths, wantPaths)
	}

	keys, err := c.PublicKeys(t.Context(), "example.com/group/app")
	if err != nil || !slices.Equal(keys, []string{"https://example.com/keys.asc"}) {
		t.Errorf("keys = %v, %v", keys, err)
	}
}

func TestACIDefaults(t *testing.T) {
	c, _ := newServer(t, map[string]string{
		"/": `<meta name="ac-discovery" content="example.com https://example.com/{name}:{version}:{os}:{arch}.{ext}">`,
	})
	eps, err := c.ACI(t.Context(), "example.com/app", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(eps) != 1 || eps[0].ACI != "https://example.com/example.com/app:latest:linux:amd64.aci" {
		t.Errorf("endpoints = %v", eps)
	}
}

func TestACIFailure(t *testing.T) {
	c, paths := newServer(t, map[string]string{
		"/": `<meta name="ac-discovery" content="example.com/other https://example.com/{name}.{ext}">`,
	})
	_, err := c.ACI(t.Context(), "example.com/a/b", nil)
	if err == nil {
		t.Fatal("discovery succeeded without a matching tag")
	}
	for _, want := range []string{"discovery of example.com/a/b failed", "404", "no matching meta tags"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if len(*paths) != 3 {
		t.Errorf("want 3 attempts (a/b, a, root), got %v", *paths)
	}
}

func TestNoPlainHTTPUnlessAllowed(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`<meta name="ac-discovery" content="example.com https://example.com/{name}.{ext}">`))
	}))
	t.Cleanup(srv.Close)
	tr := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, srv.Listener.Addr().String())
	}}
	c := &Client{HTTP: &http.Client{Transport: tr}}
	if _, err := c.ACI(t.Context(), "example.com/app", nil); err == nil {
		t.Error("discovery used plain HTTP without InsecureHTTP")
	}
	c.InsecureHTTP = true
	if eps, err := c.ACI(t.Context(), "example.com/app", nil); err != nil || len(eps) != 1 {
		t.Errorf("with InsecureHTTP: %v, %v", eps, err)
	}
}
