package aci

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
)

// LayerOpener opens the uncompressed tar stream of one Docker or OCI
// layer. Squash opens each layer twice, so it must return the same bytes
// every time (a file, not a network stream).
type LayerOpener func() (io.ReadCloser, error)

// SquashOptions complete the image Squash writes.
type SquashOptions struct {
	// Capture lists files of the final root filesystem, as absolute paths
	// ("/etc/passwd"), whose contents Manifest needs. A path that is not a
	// regular file of at most 1 MiB is left out.
	Capture []string
	// Manifest returns the image manifest. It is called once the root
	// filesystem is written, with the captured files, so the manifest can
	// depend on them (user names resolved through /etc/passwd).
	Manifest func(captured map[string][]byte) ([]byte, error)
}

// maxCapture bounds a captured file: /etc/passwd is a few kilobytes.
const maxCapture = 1 << 20

// Squash writes to w one uncompressed ACI whose rootfs is the result of
// applying layers in order, bottom first, as a container runtime would:
// a later layer's entry replaces what lower layers had at its path (a
// directory over a directory only updates its metadata), a ".wh.NAME"
// entry deletes NAME and everything below it from the lower layers, and
// ".wh..wh..opq" empties its directory of the lower layers' contents.
// Whiteouts never hide entries of their own layer.
//
// Every layer is checked with the package's safety policy (an entry named
// "../x", an escaping symlink, a device node is refused) and no path is
// ever resolved through a symlink: where a layer needs a directory and a
// lower layer has a symlink or a file, the directory replaces it, the
// appc rule for stacking images. The output is then a valid image that
// the store validates again on import.
//
// Hard links survive squashing: a link whose target a later layer
// replaced or deleted keeps the content it had, as on a real file system.
//
// Squash reads each layer twice: first only the headers, to learn which
// entries survive, then the contents of the survivors, in layer order,
// so memory use depends on the number of entries, never on their size.
func Squash(w io.Writer, layers []LayerOpener, opts SquashOptions) error {
	s := &squasher{
		root:    &node{kind: kindImplicitDir},
		counts:  make([]int, len(layers)),
		capture: make(map[string]bool),
	}
	for _, p := range opts.Capture {
		s.capture[strings.TrimPrefix(path.Clean(p), "/")] = true
	}
	for i, open := range layers {
		if err := s.scan(i, open); err != nil {
			return fmt.Errorf("layer %d: %w", i+1, err)
		}
	}
	s.plan()

	tw := tar.NewWriter(w)
	root := &tar.Header{Typeflag: tar.TypeDir, Mode: 0o755}
	if s.rootHdr != nil {
		root = outHeader(s.rootHdr)
	}
	root.Name = rootfsName + "/"
	if err := tw.WriteHeader(root); err != nil {
		return fmt.Errorf("writing the image: %w", err)
	}
	captured := make(map[string][]byte)
	for i, open := range layers {
		if err := s.copy(tw, i, open, captured); err != nil {
			return fmt.Errorf("layer %d: %w", i+1, err)
		}
	}
	manifest, err := opts.Manifest(captured)
	if err != nil {
		return err
	}
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: manifestName, Mode: 0o644, Size: int64(len(manifest))}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("writing the image: %w", err)
	}
	if _, err := tw.Write(manifest); err != nil {
		return fmt.Errorf("writing the image: %w", err)
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("writing the image: %w", err)
	}
	return nil
}

// ref is an entry of a layer: the layer's index and the entry's position
// among the layer's checked entries.
type ref struct{ layer, index int }

// inode is a regular file as hard links see it: the entry that created
// it. Links made to it share it.
type inode struct{ src ref }

// node is one path of the squashed file system while layers are applied.
type node struct {
	kind     kind // kindImplicitDir for a directory no surviving entry made
	src      ref
	inode    *inode // regular files and hard links
	children map[string]*node
}

func (n *node) isDir() bool { return n.kind == kindDir || n.kind == kindImplicitDir }

// hidden reports whether a whiteout in layer l removes the node itself.
func (n *node) hidden(l int) bool { return n.kind == kindImplicitDir || n.src.layer < l }

type action struct {
	op   uint8  // opSkip, opWrite or opLink
	name string // the path to write the entry at, relative to the rootfs
	link string // for opLink: the path of the file to link to
}

const (
	opSkip uint8 = iota
	opWrite
	opLink
)

type squasher struct {
	root    *node
	rootHdr *tar.Header
	counts  []int      // entries per layer
	actions [][]action // per layer, per entry
	capture map[string]bool
}

// rel turns an archive path ("rootfs/etc") into a path below the root
// ("etc"); the root itself is "".
func rel(name string) string {
	if name == rootfsName {
		return ""
	}
	return strings.TrimPrefix(name, rootfsName+"/")
}

// scan applies the headers of one layer to the tree.
func (s *squasher) scan(layer int, open LayerOpener) error {
	rc, err := open()
	if err != nil {
		return err
	}
	defer rc.Close()
	n := 0
	err = walkLayer(rc, func(e entry, _ io.Reader) error {
		src := ref{layer, n}
		n++
		switch {
		case e.opaque:
			if d := s.lookup(rel(e.whiteout)); d != nil && d.isDir() {
				s.prune(d, layer)
			}
		case e.whiteout != "":
			s.whiteout(rel(e.whiteout), layer)
		case e.name == rootfsName:
			s.rootHdr = e.hdr
		case e.hdr.Typeflag == tar.TypeLink:
			target := s.lookup(rel(e.link))
			if target == nil || target.kind != kindRegular {
				return invalid(e.hdr.Name, fmt.Errorf("%w: %q", errHardlinkTarget, e.hdr.Linkname))
			}
			s.set(rel(e.name), kindRegular, src).inode = target.inode
		default:
			k, err := entryKind(e.hdr.Typeflag)
			if err != nil { // the checker already refused these
				return invalid(e.hdr.Name, err)
			}
			nd := s.set(rel(e.name), k, src)
			if k == kindRegular {
				nd.inode = &inode{src: src}
			}
		}
		return nil
	})
	s.counts[layer] = n
	return err
}

// lookup returns the node at p, or nil.
func (s *squasher) lookup(p string) *node {
	n := s.root
	if p == "" || p == "." {
		return n
	}
	for c := range strings.SplitSeq(p, "/") {
		if !n.isDir() {
			return nil
		}
		if n = n.children[c]; n == nil {
			return nil
		}
	}
	return n
}

// dir returns the directory p, creating it and replacing non-directories
// on the way, as extraction does.
func (s *squasher) dir(p string) *node {
	n := s.root
	if p == "." || p == "" {
		return n
	}
	for c := range strings.SplitSeq(p, "/") {
		child := n.children[c]
		if child == nil || !child.isDir() {
			child = &node{kind: kindImplicitDir}
			n.setChild(c, child)
		}
		n = child
	}
	return n
}

func (n *node) setChild(name string, c *node) {
	if n.children == nil {
		n.children = make(map[string]*node)
	}
	n.children[name] = c
}

// set applies an entry of kind k at p and returns its node.
func (s *squasher) set(p string, k kind, src ref) *node {
	parent := s.dir(path.Dir(p))
	base := path.Base(p)
	if old := parent.children[base]; k == kindDir && old != nil && old.isDir() {
		old.kind, old.src = kindDir, src
		return old
	}
	n := &node{kind: k, src: src}
	parent.setChild(base, n)
	return n
}

// whiteout deletes p as the layers below layer l made it.
func (s *squasher) whiteout(p string, l int) {
	parent := s.lookup(path.Dir(p))
	if p == "" || parent == nil || !parent.isDir() {
		return
	}
	base := path.Base(p)
	n := parent.children[base]
	if n == nil {
		return
	}
	s.prune(n, l)
	if n.hidden(l) {
		if len(n.children) == 0 {
			delete(parent.children, base)
		} else {
			n.kind, n.src, n.inode = kindImplicitDir, ref{}, nil
		}
	}
}

// prune deletes from below n everything the layers below layer l made.
// What layer l itself made stays, with the directories holding it.
func (s *squasher) prune(n *node, l int) {
	for name, c := range n.children {
		s.prune(c, l)
		if !c.hidden(l) {
			continue
		}
		if len(c.children) == 0 {
			delete(n.children, name)
		} else {
			c.kind, c.src, c.inode = kindImplicitDir, ref{}, nil
		}
	}
}

// member is a surviving path of a regular file.
type member struct {
	n    *node
	path string
}

// plan decides, for every entry of every layer, whether and where it is
// written. A file with hard links is written once, at the position of the
// entry that created it (before any link to it), under its own path if it
// survived there, else under the path of its first surviving link.
func (s *squasher) plan() {
	s.actions = make([][]action, len(s.counts))
	for i, n := range s.counts {
		s.actions[i] = make([]action, n)
	}
	files := make(map[*inode][]member)
	var walk func(n *node, p string)
	walk = func(n *node, p string) {
		switch n.kind {
		case kindImplicitDir:
		case kindRegular:
			files[n.inode] = append(files[n.inode], member{n, p})
		default:
			s.actions[n.src.layer][n.src.index] = action{op: opWrite, name: p}
		}
		for name, c := range n.children {
			walk(c, path.Join(p, name))
		}
	}
	for name, c := range s.root.children {
		walk(c, name)
	}
	for ino, members := range files {
		sort.Slice(members, func(i, j int) bool {
			a, b := members[i].n.src, members[j].n.src
			return a.layer < b.layer || (a.layer == b.layer && a.index < b.index)
		})
		anchor := 0
		for i, m := range members {
			if m.n.src == ino.src {
				anchor = i
			}
		}
		at := members[anchor].path
		s.actions[ino.src.layer][ino.src.index] = action{op: opWrite, name: at}
		for i, m := range members {
			if i != anchor {
				s.actions[m.n.src.layer][m.n.src.index] = action{op: opLink, name: m.path, link: at}
			}
		}
	}
}

// copy writes the surviving entries of one layer.
func (s *squasher) copy(tw *tar.Writer, layer int, open LayerOpener, captured map[string][]byte) error {
	rc, err := open()
	if err != nil {
		return err
	}
	defer rc.Close()
	acts := s.actions[layer]
	n := 0
	err = walkLayer(rc, func(e entry, body io.Reader) error {
		if n >= len(acts) {
			return errLayerChanged
		}
		a := acts[n]
		n++
		if a.op == opSkip {
			return nil
		}
		hdr := outHeader(e.hdr)
		hdr.Name = rootfsName + "/" + a.name
		switch {
		case a.op == opLink:
			hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, rootfsName+"/"+a.link, 0
		case hdr.Typeflag == tar.TypeDir:
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("writing the image: %w", err)
		}
		if hdr.Typeflag != tar.TypeReg {
			return nil
		}
		var buf *bytes.Buffer
		if s.capture[a.name] && hdr.Size <= maxCapture {
			buf = new(bytes.Buffer)
			body = io.TeeReader(body, buf)
		}
		if _, err := io.Copy(tw, body); err != nil {
			return fmt.Errorf("copying %q: %w", e.hdr.Name, err)
		}
		if buf != nil {
			captured["/"+a.name] = buf.Bytes()
		}
		return nil
	})
	if err == nil && n != len(acts) {
		err = errLayerChanged
	}
	return err
}

var errLayerChanged = errors.New("the layer changed while it was being read")

// outHeader is the part of a layer's header an image keeps: no user and
// group names (ownership is numeric), no access or change times, no
// extended attributes, so the same layers always give the same image.
func outHeader(h *tar.Header) *tar.Header {
	out := &tar.Header{
		Typeflag: h.Typeflag,
		Mode:     h.Mode & 0o7777,
		Uid:      h.Uid,
		Gid:      h.Gid,
		ModTime:  h.ModTime,
	}
	switch h.Typeflag {
	case tar.TypeReg:
		out.Size = h.Size
	case tar.TypeSymlink:
		out.Linkname = h.Linkname
	}
	return out
}
