package run

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"

	"rkt.dev/rkt/stage0/pod"
)

// preparePod creates the pod directory: the pod manifest, the stage1 and
// per-app image information, the apps' writable-layer directories and the
// empty volumes' backing directories. On any error the pipeline deletes the
// pod, so nothing half-prepared remains.
func (s *state) preparePod() error {
	pm, err := s.podManifest()
	if err != nil {
		return err
	}
	p, err := pod.Create(s.opts.DataDir)
	if err != nil {
		return err
	}
	s.pod = p
	if err := p.ToPrepare(); err != nil {
		return err
	}
	dir := p.Dir()
	b, err := json.Marshal(pm)
	if err != nil {
		return fmt.Errorf("rendering pod manifest: %w", err)
	}
	stage1Manifest, err := json.Marshal(s.stage1Manifest)
	if err != nil {
		return fmt.Errorf("rendering stage1 manifest: %w", err)
	}
	stage1Rootfs, err := s.store.TreePath(s.stage1Tree)
	if err != nil {
		return err
	}
	files := []podFile{
		{dir.Manifest(), b},
		{dir.Created(), nil},
		{dir.Stage1Manifest(), stage1Manifest},
		{dir.Stage1TreeStoreID(), []byte(s.stage1Tree)},
		{dir.Stage1ImageID(), []byte(s.stage1ID)},
	}
	for i, ra := range pm.Apps {
		im, err := json.Marshal(s.images[i].manifest)
		if err != nil {
			return err
		}
		files = append(files,
			podFile{dir.AppImageManifest(ra.Name), im},
			podFile{dir.AppTreeStoreID(ra.Name), []byte(s.images[i].treeID)})
		for _, d := range []string{dir.AppInfoDir(ra.Name), dir.AppRootfs(ra.Name), dir.AppUpper(ra.Name), dir.AppWork(ra.Name)} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return fmt.Errorf("preparing pod: %w", err)
			}
		}
	}
	if err := os.MkdirAll(dir.Path()+"/stage1", 0o755); err != nil {
		return fmt.Errorf("preparing pod: %w", err)
	}
	for _, f := range files {
		if err := os.WriteFile(f.path, f.data, 0o644); err != nil {
			return fmt.Errorf("preparing pod: %w", err)
		}
	}
	if err := os.Symlink(stage1Rootfs, dir.Stage1Rootfs()); err != nil {
		return fmt.Errorf("preparing pod: linking stage1 rootfs: %w", err)
	}
	if err := s.opts.DNS.write(dir); err != nil {
		return err
	}
	for _, v := range pm.Volumes {
		if v.Kind != "empty" {
			continue
		}
		if err := makeEmptyVolume(dir.SharedVolume(v.Name), v.Mode, v.UID, v.GID); err != nil {
			return fmt.Errorf("volume %s: %w", v.Name, err)
		}
	}
	return nil
}

// podFile is a file preparePod writes.
type podFile struct {
	path string
	data []byte
}

// makeEmptyVolume creates the backing directory of an empty volume with the
// requested mode and owner.
func makeEmptyVolume(path string, mode *string, uid, gid *int) error {
	m := uint64(0o755)
	if mode != nil {
		var err error
		if m, err = strconv.ParseUint(*mode, 8, 32); err != nil {
			return fmt.Errorf("invalid mode %q: %w", *mode, err)
		}
	}
	if err := os.MkdirAll(path, 0o755); err != nil {
		return err
	}
	if err := os.Chmod(path, os.FileMode(m)&os.ModePerm); err != nil {
		return err
	}
	u, g := 0, 0
	if uid != nil {
		u = *uid
	}
	if gid != nil {
		g = *gid
	}
	return os.Lchown(path, u, g)
}

// saveUUID writes the pod's UUID where --uuid-file-save asked.
func (s *state) saveUUID() error {
	if s.opts.UUIDFileSave == "" {
		return nil
	}
	if err := os.WriteFile(s.opts.UUIDFileSave, []byte(s.pod.UUID), 0o644); err != nil {
		return fmt.Errorf("--uuid-file-save: %w", err)
	}
	return nil
}
