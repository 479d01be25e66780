package image

import (
	"bufio"
	"hash"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// backgroundHash computes a hash in its own goroutine. Importing an image
// hashes, validates and writes every byte; SHA-512 alone runs at about
// 800 MB/s, so doing it beside the rest rather than in turn with it takes
// most of the hashing off an import's critical path on a multi-core host.
//
// Writes are batched (hashChunk) before they cross to the hashing
// goroutine, which reads a whole batch at once: the writer is then only
// held up for a copy, never for the hashing itself.
type backgroundHash struct {
	bw   *bufio.Writer
	pw   *io.PipeWriter
	done chan struct{}
	h    hash.Hash
}

// hashChunk is the size of the batches handed to the hashing goroutine.
const hashChunk = 1 << 20

func newBackgroundHash(h hash.Hash) *backgroundHash {
	pr, pw := io.Pipe()
	b := &backgroundHash{bw: bufio.NewWriterSize(pw, hashChunk), pw: pw, done: make(chan struct{}), h: h}
	go func() {
		defer close(b.done)
		// hash.Hash never fails to write; the only error is the pipe
		// closed by Abort.
		io.CopyBuffer(h, pr, make([]byte, hashChunk))
		pr.Close()
	}()
	return b
}

// Write implements io.Writer.
func (b *backgroundHash) Write(p []byte) (int, error) { return b.bw.Write(p) }

// Hash waits until everything written has been hashed and returns the
// hash. The backgroundHash cannot be written to afterwards.
func (b *backgroundHash) Hash() hash.Hash {
	b.bw.Flush() // cannot fail: the pipe is only closed below or by Abort
	b.pw.Close()
	<-b.done
	return b.h
}

// Abort ends the hashing goroutine without a result.
func (b *backgroundHash) Abort() {
	b.pw.CloseWithError(io.ErrClosedPipe)
	<-b.done
}

// writebackFile writes to a file that will be synced when complete, and
// asks the kernel to start writing it back every writebackChunk bytes, so
// that the final fsync only waits for the last chunk instead of for the
// whole image (for a 66 MB image here: 38 ms of fsync otherwise).
type writebackFile struct {
	f             *os.File
	off           int64 // bytes written
	writebackFrom int64 // where the data not yet handed to writeback starts
}

// writebackChunk is how much data is written before its writeback starts.
const writebackChunk = 8 << 20

// Write implements io.Writer.
func (w *writebackFile) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.off += int64(n)
	if w.off-w.writebackFrom >= writebackChunk {
		// Only a hint: where it fails (a file system without
		// sync_file_range), the final fsync does all the work.
		unix.SyncFileRange(int(w.f.Fd()), w.writebackFrom, w.off-w.writebackFrom, unix.SYNC_FILE_RANGE_WRITE)
		w.writebackFrom = w.off
	}
	return n, err
}
