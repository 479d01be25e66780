package docker

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"rkt.dev/rkt/stage0/image/aci"
)

// maxParallel bounds concurrent layer downloads: enough to hide a
// registry's latency, few enough not to starve a small machine.
const maxParallel = 4

// blobMode is how a source's layers are read and checked.
type blobMode int

const (
	// registryBlobs are compressed and verified by go-containerregistry
	// against their digests as they are read.
	registryBlobs blobMode = iota
	// fileBlobs are compressed files nobody verified (an OCI layout):
	// their digests are checked here.
	fileBlobs
	// uncompressedBlobs are read uncompressed (a docker-archive, whose
	// layers are plain tars; asking for them compressed would compress).
	uncompressedBlobs
)

// download writes every layer, uncompressed, to a file in dir and returns
// the files in layer order. Each layer is checked, against its blob digest
// (registries, layouts) or its diff ID (archives, layouts), both covered
// by the manifest or configuration digest, so a layer that is not the one
// the image names is refused whatever its source.
func (o *Options) download(ctx context.Context, layers []v1.Layer, diffIDs []v1.Hash, dir string, mode blobMode) ([]string, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	files := make([]string, len(layers))
	errs := make([]error, len(layers))
	sem := make(chan struct{}, maxParallel)
	var wg sync.WaitGroup
	for i, l := range layers {
		files[i] = filepath.Join(dir, fmt.Sprintf("layer-%03d.tar", i))
		wg.Go(func() {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				errs[i] = ctx.Err()
				return
			}
			defer func() { <-sem }()
			dl := layerDownload{o: o, index: i, count: len(layers), layer: l, diffID: diffIDs[i], path: files[i], mode: mode}
			if errs[i] = dl.run(ctx); errs[i] != nil {
				cancel() // one bad layer fails the image; stop the others
			}
		})
	}
	wg.Wait()
	// Report the failure that caused the others' cancellation.
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return nil, err
		}
	}
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return files, nil
}

type layerDownload struct {
	o            *Options
	index, count int
	layer        v1.Layer
	diffID       v1.Hash
	path         string
	mode         blobMode
}

func (d *layerDownload) label() string {
	return fmt.Sprintf("layer %d/%d %s", d.index+1, d.count, shortDigest(d.diffID.String()))
}

func (d *layerDownload) run(ctx context.Context) error {
	err := d.fetch(ctx)
	if err != nil {
		switch {
		case ctx.Err() != nil && !errors.Is(err, errBadLayer):
			err = ctx.Err()
		case errors.Is(err, io.ErrUnexpectedEOF):
			return fmt.Errorf("%s: the download was cut off (%w); nothing was stored, try again", d.label(), err)
		}
		return fmt.Errorf("%s: %w", d.label(), err)
	}
	return nil
}

var errBadLayer = errors.New("the image is corrupt or was tampered with")

func (d *layerDownload) fetch(ctx context.Context) error {
	var (
		src      io.ReadCloser
		digest   v1.Hash
		blobHash hash.Hash
		err      error
	)
	var size int64
	if d.mode == uncompressedBlobs {
		src, err = d.layer.Uncompressed()
	} else {
		digest, err = d.layer.Digest()
		if err == nil {
			size, _ = d.layer.Size()
			src, err = d.layer.Compressed()
		}
	}
	if err != nil {
		return err
	}
	bar := d.o.Progress.Bar(d.label(), size)
	// Closing the source ends a read blocked on a stalled server.
	stop := context.AfterFunc(ctx, func() { src.Close() })
	defer stop()
	defer src.Close()

	var r io.Reader = bar.Reader(src)
	if d.mode == fileBlobs {
		blobHash = sha256.New()
		r = io.TeeReader(r, blobHash)
	}
	err = d.write(r)
	if err == nil {
		// Read to the end of the blob, so go-containerregistry's digest
		// check, which runs at EOF, has seen everything.
		_, err = io.Copy(io.Discard, r)
	}
	if err == nil && blobHash != nil {
		if got := "sha256:" + hex.EncodeToString(blobHash.Sum(nil)); got != digest.String() {
			err = fmt.Errorf("%w: the blob hashes to %s, not %s", errBadLayer, got, digest)
		}
	}
	if err != nil {
		bar.Abort()
		return err
	}
	bar.Done()
	return nil
}

// write decompresses r into the layer's file and checks the diff ID.
func (d *layerDownload) write(r io.Reader) error {
	tr, err := decompress(r)
	if err != nil {
		return err
	}
	defer tr.Close()
	f, err := os.OpenFile(d.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	// A registry blob was verified against its digest as it was read,
	// and the manifest digest covers both it and the configuration, so
	// its diff ID adds nothing; blobs nobody verified are checked here.
	var h hash.Hash
	var w io.Writer = bw
	if d.mode != registryBlobs {
		h = sha256.New()
		w = io.MultiWriter(bw, h)
	}
	_, err = io.Copy(w, tr)
	if isCorrupt(err) {
		err = fmt.Errorf("%w: %v", errBadLayer, err)
	}
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if h == nil {
		return nil
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != d.diffID.String() {
		return fmt.Errorf("%w: its content hashes to %s, but the image configuration says %s", errBadLayer, got, d.diffID)
	}
	return nil
}

// Magic numbers of the layer compressions OCI allows.
var (
	magicGzip = []byte{0x1f, 0x8b}
	magicZstd = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// decompress detects the compression from the content, because media
// types lie often enough (Docker's "tar.gzip" layers that are plain tars).
func decompress(r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReaderSize(r, 256<<10)
	head, _ := br.Peek(len(magicZstd))
	switch {
	case bytes.HasPrefix(head, magicGzip):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%w: reading gzip header: %v", errBadLayer, err)
		}
		return zr, nil
	case bytes.HasPrefix(head, magicZstd):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, fmt.Errorf("%w: reading zstd header: %v", errBadLayer, err)
		}
		return zr.IOReadCloser(), nil
	default:
		return io.NopCloser(br), nil
	}
}

// isCorrupt tells a decompressor's complaint about its input (bad data)
// from the errors of the stream it reads (the network, a digest check).
func isCorrupt(err error) bool {
	var fe flate.CorruptInputError
	return errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader) ||
		errors.As(err, &fe) || errors.Is(err, zstd.ErrMagicMismatch) ||
		errors.Is(err, zstd.ErrCRCMismatch) || errors.Is(err, zstd.ErrBlockTooSmall) ||
		errors.Is(err, zstd.ErrReservedBlockType) || errors.Is(err, zstd.ErrUnknownDictionary)
}

func shortDigest(d string) string {
	if len(d) > len("sha256:")+12 {
		return d[:len("sha256:")+12]
	}
	return d
}

// squash applies the layer files into an ACI on w.
func squash(w io.Writer, files []string, manifest func(map[string][]byte) ([]byte, error)) error {
	openers := make([]aci.LayerOpener, len(files))
	for i, f := range files {
		openers[i] = func() (io.ReadCloser, error) { return os.Open(f) }
	}
	return aci.Squash(w, openers, aci.SquashOptions{Capture: []string{passwdFile, groupFile}, Manifest: manifest})
}
