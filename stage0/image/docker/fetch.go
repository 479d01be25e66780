package docker

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	ggremote "github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"rkt.dev/rkt/stage0/config"
	"rkt.dev/rkt/stage0/image"
	"rkt.dev/rkt/stage0/image/progress"
	"rkt.dev/rkt/stage0/image/remote"
)

// Platform is the only platform rkt runs; a manifest list is resolved to
// its image for it.
var Platform = v1.Platform{OS: "linux", Architecture: "amd64"}

// Options configure Fetch.
type Options struct {
	Store *image.Store
	Index *remote.Index
	// TmpDir receives the layers while they are downloaded. It should be
	// the store's cas/tmp, where image gc collects what a killed rkt left.
	TmpDir string
	// Auth supplies registry credentials (auth.d dockerAuth).
	Auth config.Auth
	// Policy decides whether the registry is asked at all.
	Policy remote.PullPolicy
	// InsecureTLS skips certificate verification; InsecureHTTP allows
	// plain HTTP to registries that are not on the loopback interface.
	InsecureTLS, InsecureHTTP bool
	// Progress shows downloads; nil shows nothing.
	Progress *progress.Output
	// UserAgent is sent to registries.
	UserAgent string
	// Now is time.Now; tests may replace it.
	Now func() time.Time
}

// Fetch returns the store ID of the image src names. The image is
// converted and imported only if the store does not have it yet: every
// image is stored once per manifest digest (a docker-archive, which has
// no manifest, once per configuration digest), and a fetch of a digest
// that is stored reads no layer.
//
// On any failure, a dropped connection or a corrupt layer, the store is
// left exactly as it was: layers are downloaded to temporary files that
// are removed whatever happens, and the image is committed only once it
// was converted and validated completely.
func Fetch(ctx context.Context, src Source, o Options) (string, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	var (
		id  string
		err error
	)
	switch src.Kind {
	case Registry:
		id, err = o.fetchRegistry(ctx, src)
	case OCILayout:
		id, err = o.fetchLayout(ctx, src)
	case DockerArchive:
		id, err = o.fetchArchive(ctx, src)
	default:
		err = fmt.Errorf("image %s: unknown source kind", src.Raw)
	}
	return id, err
}

// stored returns the image a record names, if the store still has it.
func (o *Options) stored(key string) (string, bool) {
	r, ok := o.Index.Get(key)
	if !ok {
		return "", false
	}
	if _, err := o.Store.Get(r.ImageID); err != nil {
		return "", false
	}
	return r.ImageID, true
}

func (o *Options) record(key, id, digest string) error {
	return o.Index.Put(remote.Record{Key: key, ImageID: id, Digest: digest, Downloaded: o.Now()})
}

func (o *Options) fetchRegistry(ctx context.Context, src Source) (string, error) {
	refKey := remote.DockerRefKey + src.Ref.Name()
	// A digest names the same image forever, so the store answers it
	// whatever the policy; a tag may move, so update asks the registry.
	if d, ok := src.Ref.(name.Digest); ok {
		if id, ok := o.stored(remote.DockerDigestKey + d.DigestStr()); ok {
			return id, nil
		}
	} else if o.Policy != remote.PullUpdate {
		if id, ok := o.stored(refKey); ok {
			return id, nil
		}
	}
	if o.Policy == remote.PullNever {
		return "", fmt.Errorf("image %s is not in the store, and --pull-policy=never forbids fetching it; fetch it first or use --pull-policy=new", src.Raw)
	}
	registry := src.Ref.Context().RegistryStr()
	desc, err := ggremote.Get(src.Ref, o.remoteOptions(ctx)...)
	if err != nil {
		return "", fmt.Errorf("image %s: fetching its manifest from registry %s: %w", src.Raw, registry, err)
	}
	var (
		img         v1.Image
		indexDigest string
	)
	switch {
	case desc.MediaType.IsIndex():
		idx, err := desc.ImageIndex()
		if err != nil {
			return "", fmt.Errorf("image %s: reading its manifest list: %w", src.Raw, err)
		}
		if img, err = platformImage(idx, src.Raw); err != nil {
			return "", err
		}
		indexDigest = desc.Digest.String()
	case desc.MediaType.IsImage():
		if img, err = desc.Image(); err != nil {
			return "", fmt.Errorf("image %s: %w", src.Raw, err)
		}
	default:
		return "", fmt.Errorf("image %s is a %s, not an image; rkt runs Docker v2 and OCI images", src.Raw, desc.MediaType)
	}
	digest, err := img.Digest()
	if err != nil {
		return "", fmt.Errorf("image %s: %w", src.Raw, err)
	}
	tag := ""
	if t, ok := src.Ref.(name.Tag); ok {
		tag = t.TagStr()
	}
	repo := src.Ref.Context().RepositoryStr()
	n, err := imageName(registry + "/" + repo)
	if err != nil {
		return "", fmt.Errorf("image %s: %w", src.Raw, err)
	}
	info := Info{Name: n, Version: tag, Registry: registry, Repository: repo, Tag: tag,
		ManifestDigest: digest.String(), Original: src.Raw}
	id, err := o.convertOnce(ctx, img, remote.DockerDigestKey+digest.String(), info, registryBlobs)
	if err != nil {
		return "", err
	}
	if indexDigest != "" {
		if err := o.record(remote.DockerDigestKey+indexDigest, id, digest.String()); err != nil {
			return "", err
		}
	}
	if err := o.record(refKey, id, digest.String()); err != nil {
		return "", err
	}
	return id, nil
}

// platformImage picks the linux/amd64 image of a manifest list.
func platformImage(idx v1.ImageIndex, raw string) (v1.Image, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("image %s: reading its manifest list: %w", raw, err)
	}
	var have []string
	for _, m := range im.Manifests {
		p := m.Platform
		if p == nil || !m.MediaType.IsImage() {
			continue
		}
		if p.OS == Platform.OS && p.Architecture == Platform.Architecture {
			img, err := idx.Image(m.Digest)
			if err != nil {
				return nil, fmt.Errorf("image %s: %w", raw, err)
			}
			return img, nil
		}
		have = append(have, p.String())
	}
	return nil, fmt.Errorf("image %s has no %s image (it has: %s)", raw, Platform.String(), strings.Join(have, ", "))
}

// remoteOptions configure go-containerregistry: credentials from
// auth.d, TLS settings, and a transport that refuses plain HTTP beyond
// the loopback interface unless the user allowed it.
func (o *Options) remoteOptions(ctx context.Context) []ggremote.Option {
	t := http.DefaultTransport.(*http.Transport).Clone()
	if o.InsecureTLS {
		if t.TLSClientConfig == nil {
			t.TLSClientConfig = &tls.Config{}
		}
		t.TLSClientConfig.InsecureSkipVerify = true
	}
	opts := []ggremote.Option{
		ggremote.WithContext(ctx),
		ggremote.WithTransport(httpGuard{next: t, allowHTTP: o.InsecureHTTP}),
		ggremote.WithAuthFromKeychain(keychain{o.Auth}),
		ggremote.WithPlatform(Platform),
	}
	if o.UserAgent != "" {
		opts = append(opts, ggremote.WithUserAgent(o.UserAgent))
	}
	return opts
}

// keychain serves auth.d dockerAuth credentials to go-containerregistry.
type keychain struct{ auth config.Auth }

func (k keychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	if c, ok := k.auth.ForRegistry(r.RegistryStr()); ok {
		return &authn.Basic{Username: c.User, Password: c.Password}, nil
	}
	return authn.Anonymous, nil
}

// httpGuard refuses plain HTTP to registries that are not on the
// loopback interface. go-containerregistry itself falls back to HTTP for
// private (RFC 1918) addresses, which would send images, and credentials,
// in the clear over a real network.
type httpGuard struct {
	next      http.RoundTripper
	allowHTTP bool
}

func (g httpGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && !g.allowHTTP && !isLoopback(req.URL.Hostname()) {
		return nil, fmt.Errorf("refusing plain HTTP to %s: only registries on localhost are reached without TLS; use --insecure-options=http to allow it", req.URL.Host)
	}
	return g.next.RoundTrip(req)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (o *Options) fetchLayout(ctx context.Context, src Source) (string, error) {
	idx, err := layout.ImageIndexFromPath(src.Path)
	if err != nil {
		return "", fmt.Errorf("image %s: reading the OCI layout: %w", src.Raw, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return "", fmt.Errorf("image %s: reading the OCI layout's index: %w", src.Raw, err)
	}
	const refName = "org.opencontainers.image.ref.name"
	var (
		desc *v1.Descriptor
		tags []string
	)
	for i, m := range im.Manifests {
		t := m.Annotations[refName]
		tags = append(tags, t)
		if (src.Tag != "" && t == src.Tag) || (src.Tag == "" && len(im.Manifests) == 1) {
			desc = &im.Manifests[i]
		}
	}
	if desc == nil {
		if src.Tag == "" {
			return "", fmt.Errorf("image %s: the layout holds %d images; name one as oci-layout:PATH:TAG (tags: %s)", src.Raw, len(im.Manifests), strings.Join(tags, ", "))
		}
		return "", fmt.Errorf("image %s: the layout has no image tagged %q (tags: %s)", src.Raw, src.Tag, strings.Join(tags, ", "))
	}
	var img v1.Image
	switch {
	case desc.MediaType.IsIndex():
		child, err := idx.ImageIndex(desc.Digest)
		if err != nil {
			return "", fmt.Errorf("image %s: %w", src.Raw, err)
		}
		if img, err = platformImage(child, src.Raw); err != nil {
			return "", err
		}
	case desc.MediaType.IsImage():
		if img, err = idx.Image(desc.Digest); err != nil {
			return "", fmt.Errorf("image %s: %w", src.Raw, err)
		}
	default:
		return "", fmt.Errorf("image %s is a %s, not an image", src.Raw, desc.MediaType)
	}
	// Nothing verified the layout's files: check the manifest against
	// the digest that named it (layers are checked as they are read).
	raw, err := img.RawManifest()
	if err != nil {
		return "", fmt.Errorf("image %s: %w", src.Raw, err)
	}
	digest := sha256Digest(raw)
	want, err := img.Digest()
	if err != nil || (desc.MediaType.IsImage() && desc.Digest.String() != digest) || want.String() != digest {
		return "", fmt.Errorf("image %s: its manifest does not match its digest %s; the layout is corrupt", src.Raw, desc.Digest)
	}
	n, err := imageName("oci-layout/" + filepath.Base(src.Path))
	if err != nil {
		return "", fmt.Errorf("image %s: %w", src.Raw, err)
	}
	version := src.Tag
	if version == "" {
		version = desc.Annotations[refName]
	}
	info := Info{Name: n, Version: version, Tag: src.Tag, ManifestDigest: digest, Original: src.Raw}
	return o.convertOnce(ctx, img, remote.DockerDigestKey+digest, info, fileBlobs)
}

func (o *Options) fetchArchive(ctx context.Context, src Source) (string, error) {
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(src.Path) })
	if err != nil {
		return "", fmt.Errorf("image %s: reading the archive's manifest.json: %w", src.Raw, err)
	}
	if len(m) != 1 {
		return "", fmt.Errorf("image %s: the archive holds %d images; rkt reads archives of one image", src.Raw, len(m))
	}
	img, err := tarball.ImageFromPath(src.Path, nil)
	if err != nil {
		return "", fmt.Errorf("image %s: %w", src.Raw, err)
	}
	info := Info{Original: src.Raw}
	base := "docker-archive/" + strings.TrimSuffix(filepath.Base(src.Path), filepath.Ext(src.Path))
	if tags := m[0].RepoTags; len(tags) > 0 {
		if t, err := name.NewTag(tags[0]); err == nil {
			info.Registry, info.Repository, info.Tag = t.RegistryStr(), t.RepositoryStr(), t.TagStr()
			base = info.Registry + "/" + info.Repository
			info.Version = info.Tag
		}
	}
	if info.Name, err = imageName(base); err != nil {
		return "", fmt.Errorf("image %s: %w", src.Raw, err)
	}
	// An archive has no registry manifest; its configuration digest
	// (Docker's image ID) names the image instead.
	cfg, err := img.RawConfigFile()
	if err != nil {
		return "", fmt.Errorf("image %s: %w", src.Raw, err)
	}
	return o.convertOnce(ctx, img, "docker-config:"+sha256Digest(cfg), info, uncompressedBlobs)
}

func sha256Digest(b []byte) string {
	h := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(h[:])
}

// convertOnce returns the stored image of key, or converts img and
// records it under key.
func (o *Options) convertOnce(ctx context.Context, img v1.Image, key string, info Info, mode blobMode) (string, error) {
	if id, ok := o.stored(key); ok {
		return id, nil
	}
	id, err := o.convert(ctx, img, info, mode)
	if err != nil {
		return "", fmt.Errorf("image %s: %w", info.Original, err)
	}
	if err := o.record(key, id, info.ManifestDigest); err != nil {
		return "", err
	}
	return id, nil
}

// errAborted stops a squash whose import gave up.
var errAborted = errors.New("import aborted")

// convert downloads the layers, squashes them into an ACI and imports it.
func (o *Options) convert(ctx context.Context, img v1.Image, info Info, mode blobMode) (string, error) {
	rawCfg, err := img.RawConfigFile()
	if err != nil {
		return "", fmt.Errorf("reading the image configuration: %w", err)
	}
	cfgDigest := sha256Digest(rawCfg)
	if mode == fileBlobs {
		m, err := img.Manifest()
		if err != nil {
			return "", err
		}
		if m.Config.Digest.String() != cfgDigest {
			return "", fmt.Errorf("the image configuration does not match its digest %s; the image is corrupt", m.Config.Digest)
		}
	}
	var cfg v1.ConfigFile
	if err := json.Unmarshal(rawCfg, &cfg); err != nil {
		return "", fmt.Errorf("the image configuration is not valid JSON: %w", err)
	}
	if cfg.OS != "" && cfg.OS != Platform.OS {
		return "", fmt.Errorf("the image is for %s; rkt runs %s images", cfg.OS, Platform.OS)
	}
	layers, err := img.Layers()
	if err != nil {
		return "", fmt.Errorf("reading the image's layers: %w", err)
	}
	if len(layers) != len(cfg.RootFS.DiffIDs) {
		return "", fmt.Errorf("the image manifest lists %d layers but its configuration %d; the image is corrupt", len(layers), len(cfg.RootFS.DiffIDs))
	}

	tmp, err := os.MkdirTemp(o.TmpDir, "docker-")
	if err != nil {
		return "", fmt.Errorf("creating a temporary directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	files, err := o.download(ctx, layers, cfg.RootFS.DiffIDs, tmp, mode)
	if err != nil {
		return "", err
	}
	o.Progress.Stepf("converting %s (%d layers) to an ACI", info.Original, len(layers))
	return o.squashImport(files, func(captured map[string][]byte) ([]byte, error) {
		im, err := appManifest(&cfg, cfgDigest, info, captured)
		if err != nil {
			return nil, err
		}
		return json.Marshal(im)
	})
}

// squashImport streams the squashed image straight into the store: no
// second copy of the image is written.
func (o *Options) squashImport(files []string, manifest func(map[string][]byte) ([]byte, error)) (string, error) {
	pr, pw := io.Pipe()
	squashErr := make(chan error, 1)
	go func() {
		// Batched writes: an io.Pipe hands over every write separately.
		bw := bufio.NewWriterSize(pw, 256<<10)
		err := squash(bw, files, manifest)
		if err == nil {
			err = bw.Flush()
		}
		pw.CloseWithError(err)
		squashErr <- err
	}()
	id, err := o.Store.Import(pr)
	pr.CloseWithError(errAborted)
	if serr := <-squashErr; serr != nil && !errors.Is(serr, errAborted) && !errors.Is(serr, io.ErrClosedPipe) {
		// The squash knows which layer and entry were bad; the import
		// only saw its stream end.
		return "", serr
	}
	if err != nil {
		return "", err
	}
	return id, nil
}
