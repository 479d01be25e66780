package image

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"rkt.dev/rkt/stage0/image/aci"
)

// Export writes the stored image id to w as an uncompressed ACI, which
// hashes to id.
func (s *Store) Export(id string, w io.Writer) error {
	if _, err := s.readRecord(id); err != nil {
		return err
	}
	return s.readBlob(id, func(r io.Reader) error {
		if _, err := io.Copy(w, r); err != nil {
			return fmt.Errorf("exporting image %s: %w", id, err)
		}
		return nil
	})
}

// OutputOptions control Extract and RenderTo.
type OutputOptions struct {
	// RootfsOnly writes the root filesystem into the destination itself
	// instead of the manifest and a rootfs/ directory.
	RootfsOnly bool
	// Overwrite replaces a destination that exists and is not empty.
	Overwrite bool
}

// Extract writes the image id alone, without its dependencies, to the
// directory dest.
func (s *Store) Extract(id, dest string, opts OutputOptions) error {
	im, l, err := s.readRecordLocked(id)
	if err != nil {
		return err
	}
	defer l.Close()
	out := s.output()
	defer out.Close()
	return writeOutput(dest, opts.Overwrite, func(dir string) error {
		eo := aci.ExtractOptions{RootfsOnly: opts.RootfsOnly}
		return s.extractBlob(id, "extracting", im.nameVersion(), im.Size, out, dir, eo)
	})
}

// RenderTo renders the image id with its dependencies, as Render does, to
// the directory dest instead of the tree store.
func (s *Store) RenderTo(id, dest string, opts OutputOptions) error {
	_, l, err := s.readRecordLocked(id)
	if err != nil {
		return err
	}
	defer l.Close()
	layers, err := s.chain(id)
	if err != nil {
		return fmt.Errorf("rendering image %s: %w", id, err)
	}
	out := s.output()
	defer out.Close()
	return writeOutput(dest, opts.Overwrite, func(dir string) error {
		return s.writeLayers(layers, dir, opts.RootfsOnly, out)
	})
}

// writeOutput fills a temporary directory next to dest and renames it to
// dest, so that dest is never left half written: on error it is as before.
func writeOutput(dest string, overwrite bool, fill func(dir string) error) error {
	empty, err := isEmptyOrMissing(dest)
	if err != nil {
		return err
	}
	if !empty && !overwrite {
		return fmt.Errorf("%s exists and is not empty; remove it or use --overwrite", dest)
	}
	parent := filepath.Dir(dest)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", parent, err)
	}
	tmp, err := os.MkdirTemp(parent, ".rkt-output-")
	if err != nil {
		return fmt.Errorf("creating a temporary directory next to %s: %w", dest, err)
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if err := fill(tmp); err != nil {
		return err
	}
	if empty {
		// rename(2) replaces an empty directory.
		if err := os.Rename(tmp, dest); err != nil {
			return fmt.Errorf("moving the output to %s: %w", dest, err)
		}
		return nil
	}
	return swapInto(tmp, dest)
}

// swapInto replaces dest with the directory tmp. The old dest is moved
// aside first, under a name derived from the unique tmp, so it can be put
// back if the second rename fails.
func swapInto(tmp, dest string) error {
	old := tmp + ".old"
	if err := os.Rename(dest, old); err != nil {
		return fmt.Errorf("replacing %s: %w", dest, err)
	}
	if err := os.Rename(tmp, dest); err != nil {
		os.Rename(old, dest)
		return fmt.Errorf("replacing %s: %w", dest, err)
	}
	if err := os.RemoveAll(old); err != nil {
		return fmt.Errorf("removing the previous contents of %s: %w", dest, err)
	}
	return nil
}

func isEmptyOrMissing(dir string) (bool, error) {
	f, err := os.Open(dir)
	if errors.Is(err, os.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("checking %s: %w", dir, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.IsDir() {
		return false, err
	}
	_, err = f.Readdirnames(1)
	if errors.Is(err, io.EOF) {
		return true, nil
	}
	return false, err
}
