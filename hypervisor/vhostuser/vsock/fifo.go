package vsock

// fifo is a byte queue of at most max bytes whose storage grows on demand
// and is released when it empties, so an idle connection costs no buffer.
type fifo struct {
	buf  []byte
	r, n int // read position and length of the content
	max  int
}

// idleKeep is the largest buffer kept when a fifo empties.
const idleKeep = 16 << 10

func (f *fifo) len() int  { return f.n }
func (f *fifo) free() int { return f.max - f.n }

// reserve returns the free space for the next k bytes (k <= free()) as up
// to two slices; commit(k) then appends what was written there.
func (f *fifo) reserve(k int) (a, b []byte) {
	if k == 0 {
		return nil, nil
	}
	if f.n+k > len(f.buf) {
		f.grow(f.n + k)
	}
	w := (f.r + f.n) % len(f.buf)
	if w+k <= len(f.buf) {
		return f.buf[w : w+k], nil
	}
	return f.buf[w:], f.buf[:k-(len(f.buf)-w)]
}

func (f *fifo) commit(k int) { f.n += k }

// write appends as much of p as fits and returns how much that was.
func (f *fifo) write(p []byte) int {
	k := min(len(p), f.free())
	if k == 0 {
		return 0
	}
	a, b := f.reserve(k)
	copy(b, p[copy(a, p):k])
	f.commit(k)
	return k
}

// peek returns the first k bytes (k <= len()) as up to two slices.
func (f *fifo) peek(k int) (a, b []byte) {
	if f.r+k <= len(f.buf) {
		return f.buf[f.r : f.r+k], nil
	}
	return f.buf[f.r:], f.buf[:k-(len(f.buf)-f.r)]
}

// discard drops the first k bytes (k <= len()).
func (f *fifo) discard(k int) {
	f.n -= k
	if f.n == 0 {
		f.r = 0
		if len(f.buf) > idleKeep {
			f.buf = nil
		}
		return
	}
	f.r = (f.r + k) % len(f.buf)
}

// read moves up to len(p) bytes into p.
func (f *fifo) read(p []byte) int {
	k := min(len(p), f.n)
	if k == 0 {
		return 0
	}
	a, b := f.peek(k)
	copy(p[copy(p, a):], b)
	f.discard(k)
	return k
}

// reset empties the queue and releases its storage.
func (f *fifo) reset() { f.buf, f.r, f.n = nil, 0, 0 }

// grow makes room for need bytes, doubling (within max) to keep appends
// amortized, and linearizes the content.
func (f *fifo) grow(need int) {
	size := max(need, 2*len(f.buf), 4096)
	size = min(size, max(f.max, need))
	nb := make([]byte, size)
	a, b := f.peek(f.n)
	copy(nb[copy(nb, a):], b)
	f.buf, f.r = nb, 0
}
