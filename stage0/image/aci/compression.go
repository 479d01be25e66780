package aci

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"fmt"
	"io"

	"github.com/ulikunitz/xz"
)

// Magic numbers of the compressions the appc spec allows for an ACI.
var (
	magicGzip  = []byte{0x1f, 0x8b}
	magicBzip2 = []byte("BZh")
	magicXz    = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
)

// Decompress returns the uncompressed tar stream of an ACI that may be
// gzip, bzip2 or xz compressed, or not compressed at all. The compression is
// detected from magic bytes rather than a file name, because images arrive
// from pipes and URLs as often as from files. Anything that is not
// recognised is passed through as a plain tar, and the tar reader then
// reports what is wrong with it.
func Decompress(r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReader(r)
	// A short stream is not an error here: it just cannot be compressed.
	head, _ := br.Peek(HeadSize)
	switch Compression(head) {
	case "gzip":
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, invalid("", fmt.Errorf("reading gzip header: %w", err))
		}
		return zr, nil
	case "bzip2":
		return io.NopCloser(bzip2.NewReader(br)), nil
	case "xz":
		xr, err := xz.NewReader(br)
		if err != nil {
			return nil, invalid("", fmt.Errorf("reading xz header: %w", err))
		}
		return io.NopCloser(xr), nil
	default:
		return io.NopCloser(br), nil
	}
}

// HeadSize is how many leading bytes of a stream Compression needs.
const HeadSize = 6

// Compression names the compression of a stream that starts with head
// (HeadSize bytes, or all of a shorter stream): "gzip", "bzip2" or "xz";
// "" for a stream Decompress passes through unchanged.
func Compression(head []byte) string {
	switch {
	case bytes.HasPrefix(head, magicGzip):
		return "gzip"
	case bytes.HasPrefix(head, magicBzip2):
		return "bzip2"
	case bytes.HasPrefix(head, magicXz):
		return "xz"
	}
	return ""
}
