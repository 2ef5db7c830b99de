//go:build unix

// Package offheap keeps large float32 buffers outside the Go heap, in anonymous memory
// mappings. A fit's pending patch embeddings (hundreds of MB, GBs for a thousand images)
// would otherwise sit on the Go heap, where the garbage collector lets the heap grow to
// about twice the live data before it collects the per-batch garbage; out here they cost
// exactly their size, and freeing them returns the memory to the operating system at once.
//
// The price is manual lifetime management: a slice obtained from Floats.Data must not be
// used after the buffer grows or is freed (the old mapping is gone and the access faults).
// A Floats is not safe for concurrent use.
package offheap

import (
	"fmt"
	"runtime"
	"syscall"
	"unsafe"

	"github.com/libpatchcore/libpatchcore/internal/errs"
)

const floatSize = int(unsafe.Sizeof(float32(0)))

// Floats is a growable float32 buffer in its own memory mapping. The zero value is an
// empty buffer that holds no mapping. The mapping is released by Free, or by the garbage
// collector if the Floats becomes unreachable without one.
type Floats struct {
	m       *mapping
	cleanup runtime.Cleanup // frees m if the Floats is collected first
}

// mapping is the current memory mapping; the cleanup of a Floats frees it.
type mapping struct {
	mem  []byte    // the whole mapping
	data []float32 // the values in use: len is the length, cap the capacity
}

// Len is the number of values in the buffer.
func (b *Floats) Len() int {
	if b.m == nil {
		return 0
	}
	return len(b.m.data)
}

// Data returns the values. The slice is valid until the next Reserve or Free.
func (b *Floats) Data() []float32 {
	if b.m == nil {
		return nil
	}
	return b.m.data
}

// Reserve makes room for at least n more values without a further remap. Growing moves
// the values to a new mapping of max(Len+n, 1.25·Len) values, so that many small
// reservations cost amortised linear time; reserve the final size up front where it is
// known, the copy briefly needs both mappings. An error wrapping errs.ErrOutOfMemory means the operating
// system refused the mapping; the buffer is unchanged then.
func (b *Floats) Reserve(n int) error {
	if n < 0 {
		return fmt.Errorf("offheap: negative reservation %d", n)
	}
	have := b.Len()
	if n == 0 || b.m != nil && cap(b.m.data)-have >= n {
		return nil
	}
	if n > (maxInt/floatSize)-have {
		return fmt.Errorf("%w: %d + %d float32 values overflow the address space", errs.ErrOutOfMemory, have, n)
	}
	want := max(have+n, have+have/4)
	if want > maxInt/floatSize {
		want = have + n
	}
	bytes := want * floatSize
	mem, err := syscall.Mmap(-1, 0, bytes, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		return fmt.Errorf("%w: mapping %d bytes: %v", errs.ErrOutOfMemory, bytes, err)
	}
	next := &mapping{mem: mem, data: unsafe.Slice((*float32)(unsafe.Pointer(&mem[0])), want)[:have]}
	if b.m != nil {
		copy(next.data, b.m.data)
		b.Free()
	}
	b.m = next
	b.cleanup = runtime.AddCleanup(b, (*mapping).release, next)
	return nil
}

// Spare returns the reserved room after the values, for the caller to fill and Commit.
// The slice is valid until the next Reserve or Free.
func (b *Floats) Spare() []float32 {
	if b.m == nil {
		return nil
	}
	return b.m.data[len(b.m.data):cap(b.m.data)]
}

// Commit appends the first n values of Spare to the buffer.
func (b *Floats) Commit(n int) {
	if n < 0 || n > len(b.Spare()) {
		panic(fmt.Sprintf("offheap: commit %d values with %d reserved", n, len(b.Spare())))
	}
	if b.m != nil {
		b.m.data = b.m.data[:len(b.m.data)+n]
	}
}

// Truncate shortens the buffer to n values (n <= Len); the capacity is kept.
func (b *Floats) Truncate(n int) {
	if n < 0 || n > b.Len() {
		panic(fmt.Sprintf("offheap: truncate to %d of %d values", n, b.Len()))
	}
	if b.m != nil {
		b.m.data = b.m.data[:n]
	}
}

// Free releases the mapping; the buffer is empty afterwards and may be reused.
func (b *Floats) Free() {
	if b.m != nil {
		b.cleanup.Stop()
		b.m.release()
		b.m = nil
	}
}

// release unmaps the memory.
func (m *mapping) release() {
	if err := syscall.Munmap(m.mem); err != nil {
		panic(fmt.Sprintf("offheap: munmap: %v", err)) // only on a corrupted mapping
	}
	m.mem, m.data = nil, nil
}

const maxInt = int(^uint(0) >> 1)
