package run

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/appc/spec/schema"

	"rkt.dev/rkt/stage0/image"
	"rkt.dev/rkt/stage1"
)

// DefaultStage1Flavor is used when neither a flag nor stage1.d names one.
const DefaultStage1Flavor = "kvm"

// defaultStage1ImagesDir is where packages install the stage1 images.
const defaultStage1ImagesDir = "/usr/lib/rkt/stage1-images"

// resolveStage1 finds the stage1 image, imports it into the store if it
// comes from a file, and checks that it implements the stage1 contract.
func (s *state) resolveStage1() error {
	ref := s.opts.Stage1
	set := 0
	for _, v := range []string{ref.Name, ref.Path, ref.URL, ref.Hash, ref.FromDir} {
		if v != "" {
			set++
		}
	}
	if set > 1 {
		return errors.New("give only one of --stage1-name, --stage1-path, --stage1-url, --stage1-hash and --stage1-from-dir")
	}
	var (
		id  string
		err error
	)
	switch {
	case ref.Path != "":
		id, err = s.importStage1File(ref.Path)
	case ref.URL != "":
		u, perr := url.Parse(ref.URL)
		if perr != nil || u.Scheme != "file" {
			return fmt.Errorf("--stage1-url %q: only file:// URLs are supported; use --stage1-path for local files", ref.URL)
		}
		id, err = s.importStage1File(u.Path)
	case ref.Hash != "":
		id, err = s.store.Resolve(ref.Hash)
	case ref.FromDir != "":
		id, err = s.stage1FromDirs(ref.FromDir)
	case ref.Name != "":
		id, err = s.stage1ByName(ref.Name)
	default:
		id, err = s.defaultStage1()
	}
	if err != nil {
		return fmt.Errorf("stage1: %w", err)
	}
	im, err := s.store.Manifest(id)
	if err != nil {
		return fmt.Errorf("stage1: %w", err)
	}
	if err := checkStage1Manifest(im); err != nil {
		return err
	}
	s.stage1ID, s.stage1Manifest = id, im
	return nil
}

// checkStage1Manifest refuses images that are not a stage1 this rkt can drive.
func checkStage1Manifest(im *schema.ImageManifest) error {
	if _, ok := im.Annotations.Get(stage1.AnnotationRun); !ok {
		return fmt.Errorf("image %s is not a stage1: it has no %s annotation", im.Name, stage1.AnnotationRun)
	}
	v := 1
	if s, ok := im.Annotations.Get(stage1.AnnotationInterfaceVersion); ok {
		n, err := strconv.Atoi(s)
		if err != nil {
			return fmt.Errorf("stage1 %s: invalid interface version %q", im.Name, s)
		}
		v = n
	}
	if v > stage1.InterfaceVersion {
		return fmt.Errorf("stage1 %s implements interface version %d, this rkt only knows up to %d; upgrade rkt", im.Name, v, stage1.InterfaceVersion)
	}
	return nil
}

// importStage1File imports a stage1 ACI from a local file. Stage1 images
// named by a local path are trusted like the rkt binary itself: whoever can
// pass the path can also replace rkt.
func (s *state) importStage1File(path string) (string, error) {
	id, err := s.store.ImportFile(path)
	if err != nil {
		return "", fmt.Errorf("importing stage1 image %s: %w", path, err)
	}
	return id, nil
}

// stage1ImagesDirs lists where stage1 image files are looked for: the
// configured directory, the packaged location, and the build tree next to
// the running binary (build/bin/rkt → build/).
func (s *state) stage1ImagesDirs() []string {
	var dirs []string
	if s.opts.Config != nil && s.opts.Config.Paths.Stage1Images != "" {
		dirs = append(dirs, s.opts.Config.Paths.Stage1Images)
	}
	dirs = append(dirs, defaultStage1ImagesDir)
	if exe, err := os.Executable(); err == nil {
		dirs = append(dirs, filepath.Dir(filepath.Dir(exe)))
	}
	return dirs
}

func (s *state) stage1FromDirs(file string) (string, error) {
	if strings.Contains(file, "/") {
		return "", fmt.Errorf("--stage1-from-dir takes a file name, not a path: %q", file)
	}
	dirs := s.stage1ImagesDirs()
	for _, d := range dirs {
		p := filepath.Join(d, file)
		if _, err := os.Stat(p); err == nil {
			return s.importStage1File(p)
		}
	}
	return "", fmt.Errorf("stage1 image %s not found in %s", file, strings.Join(dirs, ", "))
}

// stage1ByName resolves --stage1-name: a built-in flavor ("kvm") or an image
// name. A built-in flavor's image file wins over the store, so a rebuilt
// stage1 is picked up without a manual re-import.
func (s *state) stage1ByName(name string) (string, error) {
	full := name
	for _, f := range stage1.Flavors {
		if name == f {
			full = stage1.ImageNamePrefix + f
		}
	}
	if flavor, ok := strings.CutPrefix(full, stage1.ImageNamePrefix); ok && !strings.Contains(flavor, ":") {
		for _, d := range s.stage1ImagesDirs() {
			p := filepath.Join(d, "stage1-"+flavor+".aci")
			if _, err := os.Stat(p); err == nil {
				return s.importStage1File(p)
			}
		}
	}
	id, err := s.store.Resolve(full)
	if errors.Is(err, image.ErrNotFound) {
		return "", fmt.Errorf("stage1 image %s not found in the store nor as stage1-<flavor>.aci in %s; build it with 'make' or give --stage1-path",
			full, strings.Join(s.stage1ImagesDirs(), ", "))
	}
	return id, err
}

// defaultStage1 uses stage1.d configuration, or the default flavor.
func (s *state) defaultStage1() (string, error) {
	if c := s.opts.Config; c != nil && c.Stage1.Name != "" {
		if c.Stage1.Location != "" {
			if id, err := s.store.Resolve(c.Stage1.Name + ":" + c.Stage1.Version); err == nil {
				return id, nil
			}
			return s.importStage1File(strings.TrimPrefix(c.Stage1.Location, "file://"))
		}
		return s.stage1ByName(c.Stage1.Name + ":" + c.Stage1.Version)
	}
	return s.stage1ByName(DefaultStage1Flavor)
}
