// Package acifetch fetches ACIs from local files, from https:// URLs and by
// name through appc meta discovery, and verifies their signatures against
// the trust store before anything reaches the image store.
//
// An image's signature is its detached, armored .aci.asc: next to a local
// file, at the URL plus ".asc", or where discovery says. Verification
// checks it against the keys trusted for the name in the image's own
// manifest (and, for a discovered image, checks that the manifest names
// the image that was asked for). With InsecureImage nothing is verified.
//
// Downloads honour HTTP caching: a URL fetched before is not asked again
// while its Cache-Control max-age lasts, and is revalidated with its ETag
// afterwards, so an unchanged image is never downloaded twice. What was
// learnt is kept in package remote. The signature an image was verified
// with is kept with the image in the store (image.Store.ImportSigned),
// and VerifyStored, `rkt image verify`, checks it again later.
package acifetch

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"

	"rkt.dev/rkt/stage0/config"
	"rkt.dev/rkt/stage0/image"
	"rkt.dev/rkt/stage0/image/aci"
	"rkt.dev/rkt/stage0/image/discovery"
	"rkt.dev/rkt/stage0/image/progress"
	"rkt.dev/rkt/stage0/image/remote"
	"rkt.dev/rkt/stage0/image/trust"
)

// discoveryKey + a name[:version] records that the name was discovered.
const discoveryKey = "discovered:"

// maxSignature bounds a signature or key download: they are a few KiB.
const maxSignature = 1 << 20

// Options configure fetching.
type Options struct {
	Store *image.Store
	Index *remote.Index
	Trust trust.Store
	// HTTP is the client for every request.
	HTTP *http.Client
	// Auth supplies credentials (auth.d "auth"), sent over HTTPS only.
	Auth config.Auth
	// TmpDir receives downloads until they are imported; the store's
	// cas/tmp, where image gc collects what a killed rkt left.
	TmpDir string
	Policy remote.PullPolicy
	// InsecureImage skips signature verification; InsecureHTTP allows
	// plain HTTP URLs and discovery.
	InsecureImage, InsecureHTTP bool
	// TrustKeysFromHTTPS trusts, without asking, the keys that discovery
	// names over HTTPS for an image signed by a key not yet trusted.
	TrustKeysFromHTTPS bool
	Progress           *progress.Output
	// Now is time.Now; tests may replace it.
	Now func() time.Time
}

func (o *Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

// IsURL reports whether ref is an http(s) URL of an image.
func IsURL(ref string) bool {
	return strings.HasPrefix(ref, "https://") || strings.HasPrefix(ref, "http://")
}

// FetchFile imports a local ACI, verifying PATH.asc unless InsecureImage.
// An unsigned import goes through Store.ImportFile, which skips re-reading
// a file it imported before: rkt run of the same file is then not slowed
// by hashing it again.
func FetchFile(ctx context.Context, path string, o Options) (string, error) {
	if o.InsecureImage {
		id, err := o.Store.ImportFile(path)
		if err != nil {
			return "", fmt.Errorf("importing %s: %w", path, err)
		}
		return id, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("image %s: %w", path, err)
	}
	defer f.Close()
	sig, err := os.ReadFile(path + ".asc")
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("image %s has no signature %s.asc, so it cannot be verified; sign it, or skip verification with --insecure-options=image", path, path)
	}
	if err != nil {
		return "", fmt.Errorf("image %s: reading its signature: %w", path, err)
	}
	return o.importVerified(ctx, f, path, sig, "", nil)
}

// FetchURL fetches the ACI at an https:// URL, with its signature at the
// URL plus ".asc".
func FetchURL(ctx context.Context, u string, o Options) (string, error) {
	if err := o.checkScheme(u); err != nil {
		return "", err
	}
	if o.Policy != remote.PullUpdate {
		if id, ok := o.stored(u); ok {
			return id, nil
		}
	}
	if o.Policy == remote.PullNever {
		return "", fmt.Errorf("image %s is not in the store, and --pull-policy=never forbids fetching it", u)
	}
	return o.fetchEndpoint(ctx, discovery.Endpoint{ACI: u, Signature: u + ".asc"}, "", nil)
}

// FetchName fetches an image by name ("example.com/app:v1.0") through
// appc meta discovery.
func FetchName(ctx context.Context, ref string, o Options) (string, error) {
	name, version, _ := strings.Cut(ref, ":")
	if _, err := types.NewACIdentifier(name); err != nil {
		return "", fmt.Errorf("%q is not an image name, an image ID, a file or a URL: %w", ref, err)
	}
	// The store answers new and never; it answers update too for an
	// image that did not come from discovery (imported from a file),
	// since there is nowhere to update it from.
	if id, err := o.Store.Resolve(ref); err == nil {
		if _, discovered := o.Index.Get(discoveryKey + ref); o.Policy != remote.PullUpdate || !discovered {
			return id, nil
		}
	} else if !errors.Is(err, image.ErrNotFound) {
		return "", err
	}
	if o.Policy == remote.PullNever {
		return "", fmt.Errorf("image %s is not in the store, and --pull-policy=never forbids fetching it", ref)
	}
	labels := map[string]string{"version": version}
	// The image must carry what was asked for; "latest", the default
	// version, is whatever version the server has now.
	check := discovery.Labels(labels)
	if version == "" {
		delete(check, "version")
	}
	dc := &discovery.Client{HTTP: o.HTTP, Header: o.authHeader, InsecureHTTP: o.InsecureHTTP}
	eps, err := dc.ACI(ctx, name, labels)
	if err != nil {
		return "", fmt.Errorf("image %s: %w; check the name, or fetch a file or URL instead", ref, err)
	}
	var errs []error
	for _, ep := range eps {
		id, err := o.fetchEndpoint(ctx, ep, name, check)
		if err == nil {
			return id, o.Index.Put(remote.Record{Key: discoveryKey + ref, ImageID: id, Downloaded: o.now()})
		}
		var ve *trust.VerifyError
		if errors.As(err, &ve) {
			return "", err // a signature problem is not solved by a mirror
		}
		errs = append(errs, err)
	}
	return "", fmt.Errorf("image %s: no discovered location worked: %w", ref, errors.Join(errs...))
}

func (o *Options) checkScheme(u string) error {
	p, err := url.Parse(u)
	if err != nil {
		return fmt.Errorf("image %s: %w", u, err)
	}
	switch {
	case p.Scheme == "https":
	case p.Scheme == "http" && o.InsecureHTTP:
	case p.Scheme == "http":
		return fmt.Errorf("image %s: refusing plain HTTP; use an https:// URL, or allow it with --insecure-options=http", u)
	default:
		return fmt.Errorf("image %s: unsupported URL scheme %q", u, p.Scheme)
	}
	return nil
}

func (o *Options) authHeader(host string) http.Header {
	if c, ok := o.Auth.ForHost(host); ok {
		return http.Header{"Authorization": {c.Header()}}
	}
	return nil
}

// stored returns the image a URL was stored as, if the store has it.
func (o *Options) stored(u string) (string, bool) {
	r, ok := o.Index.Get(u)
	if !ok {
		return "", false
	}
	if _, err := o.Store.Get(r.ImageID); err != nil {
		return "", false
	}
	return r.ImageID, true
}

// fetchEndpoint downloads, verifies and imports one image. With a name,
// the image's manifest must carry that name and the labels.
func (o *Options) fetchEndpoint(ctx context.Context, ep discovery.Endpoint, name string, labels map[string]string) (string, error) {
	if err := o.checkScheme(ep.ACI); err != nil {
		return "", err
	}
	rec, cached := o.Index.Get(ep.ACI)
	if cached {
		if _, err := o.Store.Get(rec.ImageID); err != nil {
			cached = false
		}
	}
	if cached && rec.Fresh(o.now()) {
		return rec.ImageID, nil
	}
	etag := ""
	if cached {
		etag = rec.ETag
	}
	tmp, resp, err := o.download(ctx, ep.ACI, etag)
	if err != nil {
		return "", err
	}
	if tmp == nil { // 304 Not Modified
		rec.Downloaded, rec.MaxAge = o.now(), maxAge(resp.Header)
		if e := resp.Header.Get("ETag"); e != "" {
			rec.ETag = e
		}
		if err := o.Index.Put(rec); err != nil {
			return "", err
		}
		return rec.ImageID, nil
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name())
	}()
	var sig []byte
	if !o.InsecureImage {
		if sig, err = o.get(ctx, ep.Signature, maxSignature); err != nil {
			return "", fmt.Errorf("image %s: fetching its signature: %w; the image cannot be verified without it (skip verification with --insecure-options=image)", ep.ACI, err)
		}
	}
	id, err := o.importVerified(ctx, tmp, ep.ACI, sig, name, labels)
	if err != nil {
		return "", err
	}
	return id, o.Index.Put(remote.Record{
		Key: ep.ACI, ImageID: id, ETag: resp.Header.Get("ETag"),
		MaxAge: maxAge(resp.Header), Downloaded: o.now(),
	})
}

// importVerified validates the image in f, checks its name and labels
// when given, verifies sig against the trust store (unless sig is nil,
// which only InsecureImage allows) and imports it. f must be seekable:
// it is read once to validate, once to verify and once to import, and
// the store sees it only once it passed everything.
func (o *Options) importVerified(ctx context.Context, f io.ReadSeeker, what string, sig []byte, name string, labels map[string]string) (string, error) {
	var (
		signer trust.Key
		err    error
	)
	// When the name is known (discovery), the signature is checked before
	// rkt parses a byte of the image: untrusted data is only read once it
	// is known to come from a trusted publisher.
	if sig != nil && name != "" {
		if signer, err = o.verify(ctx, name, f, sig); err != nil {
			return "", err
		}
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	im, err := manifestOf(f)
	if err != nil {
		return "", fmt.Errorf("image %s: %w", what, err)
	}
	if name != "" {
		if err := matches(im, name, labels); err != nil {
			return "", fmt.Errorf("image %s: %w", what, err)
		}
	}
	// Otherwise the keys to check with depend on the name in the image.
	if sig != nil && name == "" {
		if signer, err = o.verify(ctx, im.Name.String(), f, sig); err != nil {
			return "", err
		}
	}
	if sig != nil {
		o.Progress.Stepf("image %s: signature verified: signed by key %s (%s)", im.Name, signer.Fingerprint, signer.Identity())
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	var id string
	if sig == nil {
		id, err = o.Store.Import(f)
	} else {
		// The store keeps the signature, and the signed bytes when they
		// are not the stored blob, so image verify can check it again.
		id, err = o.Store.ImportSigned(f, sig)
	}
	if err != nil {
		return "", fmt.Errorf("importing %s: %w", what, err)
	}
	return id, nil
}

// verify checks a signature of the bytes of f and returns the signing key.
// With TrustKeysFromHTTPS, the keys discovery names are trusted for an
// image signed by an unknown key.
func (o *Options) verify(ctx context.Context, name string, f io.ReadSeeker, sig []byte) (trust.Key, error) {
	try := func() (trust.Key, error) {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return trust.Key{}, err
		}
		return o.Trust.Verify(name, f, sig)
	}
	k, err := try()
	if err == nil || !o.TrustKeysFromHTTPS || !errors.Is(err, trust.ErrUntrusted) {
		return k, err
	}
	// Keys trusted without asking come over HTTPS only, whatever else
	// the user allowed.
	strict := *o
	strict.InsecureHTTP = false
	if _, kerr := strict.TrustDiscoveredKeys(ctx, name, name, nil); kerr != nil {
		return trust.Key{}, fmt.Errorf("%w (and --trust-keys-from-https found no key: %v)", err, kerr)
	}
	return try()
}

// TrustDiscoveredKeys discovers the keys of name and adds them to the
// trust store for prefix. Keys come over HTTPS only, unless InsecureHTTP.
// With confirm set, each key is added only if confirm accepts it.
func (o *Options) TrustDiscoveredKeys(ctx context.Context, name, prefix string, confirm func(armored []byte, url string) (bool, error)) ([]trust.Key, error) {
	dc := &discovery.Client{HTTP: o.HTTP, Header: o.authHeader, InsecureHTTP: o.InsecureHTTP}
	urls, err := dc.PublicKeys(ctx, name)
	if err != nil {
		return nil, err
	}
	var added []trust.Key
	for _, u := range urls {
		if !strings.HasPrefix(u, "https://") && !o.InsecureHTTP {
			continue
		}
		b, err := o.get(ctx, u, maxSignature)
		if err != nil {
			return added, fmt.Errorf("fetching key %s: %w", u, err)
		}
		if confirm != nil {
			ok, err := confirm(b, u)
			if err != nil {
				return added, err
			}
			if !ok {
				continue
			}
		}
		k, err := o.Trust.Add(b, prefix)
		if err != nil {
			return added, fmt.Errorf("key %s: %w", u, err)
		}
		o.Progress.Stepf("trusting key %s for prefix %s (from %s)", k.Fingerprint, prefix, u)
		added = append(added, k)
	}
	if len(added) == 0 {
		return nil, fmt.Errorf("no key for %s was found or accepted", prefix)
	}
	return added, nil
}

// manifestOf validates an image (any compression) and returns its
// manifest.
func manifestOf(r io.Reader) (*schema.ImageManifest, error) {
	dr, err := aci.Decompress(r)
	if err != nil {
		return nil, err
	}
	defer dr.Close()
	im, _, err := aci.Validate(dr)
	return im, err
}

// matches checks that a discovered image is the one asked for: appc
// requires the labels used for discovery to match the manifest.
func matches(im *schema.ImageManifest, name string, labels map[string]string) error {
	if im.Name.String() != name {
		return fmt.Errorf("the image is called %s, not %s as discovery promised; refusing it", im.Name, name)
	}
	for k, v := range labels {
		if got, ok := im.GetLabel(k); ok && got != v {
			return fmt.Errorf("the image's %s label is %q, not %q as asked", k, got, v)
		}
	}
	return nil
}

// download GETs an image into a temporary file, revalidating with etag
// when set. It returns a nil file for 304 Not Modified.
func (o *Options) download(ctx context.Context, u, etag string) (*os.File, *http.Response, error) {
	req, err := o.request(ctx, u)
	if err != nil {
		return nil, nil, err
	}
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := o.HTTP.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("image %s: %w", u, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified && etag != "":
		return nil, resp, nil
	case resp.StatusCode != http.StatusOK:
		return nil, nil, fmt.Errorf("image %s: %s", u, resp.Status)
	}
	f, err := os.CreateTemp(o.TmpDir, "aci-")
	if err != nil {
		return nil, nil, fmt.Errorf("creating a temporary file: %w", err)
	}
	bar := o.Progress.Bar(u, resp.ContentLength)
	_, err = io.Copy(f, bar.Reader(resp.Body))
	if err == nil && resp.ContentLength >= 0 {
		if n, _ := f.Seek(0, io.SeekCurrent); n != resp.ContentLength {
			err = fmt.Errorf("got %d of %d bytes", n, resp.ContentLength)
		}
	}
	if err != nil {
		bar.Abort()
		f.Close()
		os.Remove(f.Name())
		return nil, nil, fmt.Errorf("image %s: download cut off (%w); nothing was stored, try again", u, err)
	}
	bar.Done()
	return f, resp, nil
}

// FetchKey downloads an armored public key from an https:// URL (or
// http:// with InsecureHTTP).
func (o *Options) FetchKey(ctx context.Context, u string) ([]byte, error) {
	return o.get(ctx, u, maxSignature)
}

// NewHTTPClient returns the client of ACI, signature and discovery requests:
// bounded waits for connections and headers, none for bodies (images
// are large).
func NewHTTPClient(insecureTLS bool) *http.Client {
	t := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   30 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		ForceAttemptHTTP2:     true,
		MaxIdleConnsPerHost:   4,
	}
	if insecureTLS {
		t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
	}
	return &http.Client{
		Transport: t,
		// Never follow a redirect from HTTPS down to plain HTTP.
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 10 {
				return errors.New("too many redirects")
			}
			if via[0].URL.Scheme == "https" && req.URL.Scheme != "https" {
				return fmt.Errorf("refusing the redirect from %s to %s: it leaves HTTPS", via[0].URL, req.URL)
			}
			return nil
		},
	}
}

// get fetches a small file (a signature, a key) into memory.
func (o *Options) get(ctx context.Context, u string, limit int64) ([]byte, error) {
	if err := o.checkScheme(u); err != nil {
		return nil, err
	}
	req, err := o.request(ctx, u)
	if err != nil {
		return nil, err
	}
	resp, err := o.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", u, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err == nil && int64(len(b)) > limit {
		err = fmt.Errorf("%s: larger than %d bytes", u, limit)
	}
	return b, err
}

func (o *Options) request(ctx context.Context, u string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	if req.URL.Scheme == "https" {
		for k, v := range o.authHeader(req.URL.Host) {
			req.Header[k] = v
		}
	}
	return req, nil
}

// maxAge reads Cache-Control's max-age; no-cache and no-store mean 0.
func maxAge(h http.Header) int {
	age := 0
	for _, d := range strings.Split(h.Get("Cache-Control"), ",") {
		d = strings.TrimSpace(strings.ToLower(d))
		switch {
		case d == "no-cache" || d == "no-store":
			return 0
		case strings.HasPrefix(d, "max-age="):
			if n, err := strconv.Atoi(strings.TrimPrefix(d, "max-age=")); err == nil && n > 0 {
				age = n
			}
		}
	}
	return age
}
