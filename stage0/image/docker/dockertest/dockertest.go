// Package dockertest builds Docker/OCI images in memory for tests: the
// docker package's unit tests and the functional tests in tests/ push them
// to registries they start on 127.0.0.1. It is imported only by tests.
package dockertest

import (
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Image is a linux/arch image of layers with configuration cfg.
func Image(t testing.TB, arch string, cfg v1.Config, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Config = "linux", arch, cfg
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	return img
}

// LocalSources writes img to dir twice, as the two local sources rkt
// fetches from: an OCI layout in dir/oci whose index names it layoutTag
// (org.opencontainers.image.ref.name), and a docker-archive file
// dir/image.tar tagged archiveTag ("example.com/app:1.0"). It returns the
// layout directory and the archive path.
func LocalSources(t testing.TB, img v1.Image, dir, layoutTag, archiveTag string) (layoutDir, archive string) {
	t.Helper()
	layoutDir = filepath.Join(dir, "oci")
	lp, err := layout.Write(layoutDir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": layoutTag})); err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(archiveTag)
	if err != nil {
		t.Fatal(err)
	}
	archive = filepath.Join(dir, "image.tar")
	if err := tarball.WriteToFile(archive, tag, img); err != nil {
		t.Fatal(err)
	}
	return layoutDir, archive
}
