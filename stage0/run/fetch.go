package run

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"rkt.dev/rkt/internal/version"
	"rkt.dev/rkt/stage0/config"
	"rkt.dev/rkt/stage0/image"
	"rkt.dev/rkt/stage0/image/aci"
	"rkt.dev/rkt/stage0/image/acifetch"
	"rkt.dev/rkt/stage0/image/docker"
	"rkt.dev/rkt/stage0/image/progress"
	"rkt.dev/rkt/stage0/image/remote"
	"rkt.dev/rkt/stage0/image/trust"
)

// fetchImages puts every app's image in the store, fetching what is not
// there yet (rkt run's default pull policy is "new").
func (s *state) fetchImages() error {
	if len(s.opts.Apps) == 0 {
		return errors.New("no image given; usage: rkt run [flags] IMAGE [app flags] [-- args] [--- IMAGE ...]")
	}
	fo := FetchOptions{
		DataDir:            s.opts.DataDir,
		Config:             s.opts.Config,
		PullPolicy:         s.opts.PullPolicy,
		InsecureImage:      s.opts.InsecureImage,
		InsecureTLS:        s.opts.InsecureTLS,
		InsecureHTTP:       s.opts.InsecureHTTP,
		TrustKeysFromHTTPS: s.opts.TrustKeysFromHTTPS,
		Log:                s.opts.Log,
	}
	for _, a := range s.opts.Apps {
		id, err := FetchImage(context.Background(), s.store, a.Image, fo)
		if err != nil {
			return err
		}
		im, err := s.store.Manifest(id)
		if err != nil {
			return err
		}
		s.images = append(s.images, fetchedImage{id: id, manifest: im})
	}
	return nil
}

// IsFileRef reports whether an image reference names a local file rather
// than an image name or ID: it has a path separator or an .aci suffix.
func IsFileRef(ref string) bool {
	return strings.HasPrefix(ref, "file://") || strings.HasSuffix(ref, ".aci") ||
		strings.HasPrefix(ref, "/") || strings.HasPrefix(ref, "./") || strings.HasPrefix(ref, "../")
}

// FetchOptions say how FetchImage may get an image the store lacks.
type FetchOptions struct {
	// DataDir is the rkt data directory of the store.
	DataDir string
	// Config supplies credentials (auth.d) and the directories of the
	// trust store; nil means neither.
	Config *config.Config
	// PullPolicy decides when the network is used; zero means new.
	PullPolicy remote.PullPolicy
	// The --insecure-options that concern fetching: image skips
	// signature verification (and is required for Docker and OCI
	// images, which have none), tls skips certificate checks, http
	// allows plain HTTP beyond localhost.
	InsecureImage, InsecureTLS, InsecureHTTP bool
	// TrustKeysFromHTTPS trusts the keys discovery names over HTTPS for
	// an image signed by a key not yet trusted.
	TrustKeysFromHTTPS bool
	// Log receives progress: bars on a terminal, lines otherwise.
	Log io.Writer
}

// FetchImage returns the store ID of ref, fetching the image if needed.
// It is shared by `rkt fetch` and the run pipeline, so both accept the
// same references:
//
//   - docker://…, oci-layout:…, docker-archive:… — Docker and OCI images,
//     converted to ACIs (they need --insecure-options=image);
//   - an ACI file (a path, a file:// URL), verified with FILE.asc;
//   - an https:// URL of an ACI, verified with URL.asc;
//   - an image ID (sha512-…), which must be in the store;
//   - an image name with an optional :version, found in the store or
//     through appc meta discovery, and verified.
func FetchImage(ctx context.Context, store *image.Store, ref string, o FetchOptions) (string, error) {
	if o.PullPolicy == 0 {
		o.PullPolicy = remote.PullNew
	}
	out := progress.New(o.Log)
	if o.Log == nil {
		out = nil
	}
	defer out.Close()
	index, err := remote.Open(o.DataDir)
	if err != nil {
		return "", err
	}
	tmp := filepath.Join(o.DataDir, "cas", "tmp")
	var cfg config.Config
	if o.Config != nil {
		cfg = *o.Config
	}

	if docker.IsSource(ref) {
		if !o.InsecureImage {
			return "", fmt.Errorf("image %s: Docker and OCI images carry no signature rkt can verify; rerun with --insecure-options=image to fetch it without verification", ref)
		}
		src, err := docker.ParseSource(ref, o.InsecureHTTP)
		if err != nil {
			return "", err
		}
		return docker.Fetch(ctx, src, docker.Options{
			Store: store, Index: index, TmpDir: tmp, Auth: cfg.Auth, Policy: o.PullPolicy,
			InsecureTLS: o.InsecureTLS, InsecureHTTP: o.InsecureHTTP, Progress: out,
			UserAgent: "rkt/" + version.Version,
		})
	}

	ao := acifetch.Options{
		Store: store, Index: index, TmpDir: tmp, Auth: cfg.Auth, Policy: o.PullPolicy,
		Trust:         trust.Store{SystemDir: cfg.Dirs.System, LocalDir: cfg.Dirs.Local},
		HTTP:          acifetch.NewHTTPClient(o.InsecureTLS),
		InsecureImage: o.InsecureImage, InsecureHTTP: o.InsecureHTTP,
		TrustKeysFromHTTPS: o.TrustKeysFromHTTPS, Progress: out,
	}
	switch {
	case acifetch.IsURL(ref): // before files: a URL may end in .aci too
		return acifetch.FetchURL(ctx, ref, ao)
	case IsFileRef(ref):
		return acifetch.FetchFile(ctx, strings.TrimPrefix(ref, "file://"), ao)
	case strings.Contains(ref, "://"):
		scheme, _, _ := strings.Cut(ref, "://")
		return "", fmt.Errorf("image %s: %s:// is not a supported source (use docker://, https://, file:// or a path)", ref, scheme)
	case strings.HasPrefix(ref, aci.ImageIDPrefix):
		return store.Resolve(ref)
	}
	if !discoverable(ref) {
		id, err := store.Resolve(ref)
		if errors.Is(err, image.ErrNotFound) {
			return "", fmt.Errorf("image %q is not in the store, and discovery needs a name that starts with a domain (example.com/app); fetch a file, an https:// URL or a docker:// image instead", ref)
		}
		return id, err
	}
	id, err := acifetch.FetchName(ctx, ref, ao)
	if err != nil && o.PullPolicy == remote.PullUpdate {
		// Discovery failed; an image already stored under the name is
		// still better than nothing, as long as the user hears of it.
		if sid, rerr := store.Resolve(ref); rerr == nil {
			out.Stepf("warning: could not update %s (%v); using the stored image %s", ref, err, sid)
			return sid, nil
		}
	}
	return id, err
}

// discoverable reports whether appc meta discovery can look up a name: its
// first component must be a host name with a domain, or localhost.
func discoverable(ref string) bool {
	host, _, _ := strings.Cut(ref, "/")
	host, _, _ = strings.Cut(host, ":")
	return strings.Contains(host, ".") || host == "localhost"
}

// render makes sure the stage1 and every app image are rendered in the tree
// store.
func (s *state) render() error {
	tree, err := s.store.Render(s.stage1ID)
	if err != nil {
		return fmt.Errorf("rendering stage1 image: %w", err)
	}
	s.stage1Tree = tree
	for i := range s.images {
		im := &s.images[i]
		if im.treeID, err = s.store.Render(im.id); err != nil {
			return fmt.Errorf("rendering image %s: %w", im.manifest.Name, err)
		}
	}
	return nil
}

// markUsed records that the pod's images were used now, for image gc.
func (s *state) markUsed() {
	ids := imageIDs(s.images)
	if s.stage1ID != "" {
		ids = append(ids, s.stage1ID)
	}
	if err := s.store.MarkUsed(ids...); err != nil {
		s.logf("warning: %v", err)
	}
}

func imageIDs(ims []fetchedImage) []string {
	var ids []string
	for _, im := range ims {
		ids = append(ids, im.id)
	}
	return ids
}
