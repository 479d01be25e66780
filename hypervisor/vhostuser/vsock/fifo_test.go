package vsock

import (
	"bytes"
	"testing"
)

// TestFifo runs sequences of writes and reads against a plain slice model,
// crossing the wrap-around point and growing and releasing storage.
func TestFifo(t *testing.T) {
	tests := []struct {
		name string
		max  int
		ops  []int // > 0: write that many bytes; < 0: read that many
	}{
		{"fill and drain", 100, []int{100, -100}},
		{"over the limit", 100, []int{150, -40, 80, -200}},
		{"wrap around", 8192, []int{6000, -5000, 6000, -3000, 2000, -6000}},
		{"grow while wrapped", 1 << 20, []int{3000, -2500, 4000, 50000, -1000, -60000}},
		{"release when empty", 64 << 10, []int{60000, -60000, 10, -10}},
		{"empty operations", 10, []int{-5, 0, 10, 1, -0, -20}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := fifo{max: tt.max}
			var model []byte
			next := byte(0)
			for i, op := range tt.ops {
				if op >= 0 {
					p := make([]byte, op)
					for j := range p {
						p[j], next = next, next+1
					}
					want := min(op, tt.max-len(model))
					if n := f.write(p); n != want {
						t.Fatalf("op %d: write(%d) = %d, want %d", i, op, n, want)
					}
					model = append(model, p[:want]...)
					next -= byte(op - want)
				} else {
					p := make([]byte, -op)
					n := f.read(p)
					want := min(-op, len(model))
					if n != want || !bytes.Equal(p[:n], model[:want]) {
						t.Fatalf("op %d: read(%d) = %d bytes, want %d matching the model", i, -op, n, want)
					}
					model = model[want:]
				}
				if f.len() != len(model) || f.free() != tt.max-len(model) {
					t.Fatalf("op %d: len %d free %d, model holds %d of %d", i, f.len(), f.free(), len(model), tt.max)
				}
				if f.len() == 0 && len(f.buf) > idleKeep {
					t.Fatalf("op %d: empty fifo keeps %d bytes", i, len(f.buf))
				}
			}
		})
	}
}
