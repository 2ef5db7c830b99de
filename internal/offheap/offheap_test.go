package offheap

import (
	"errors"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/libpatchcore/libpatchcore/internal/errs"
)

// add appends x through Reserve, Spare and Commit.
func add(t *testing.T, b *Floats, x ...float32) {
	t.Helper()
	if err := b.Reserve(len(x)); err != nil {
		t.Fatal(err)
	}
	b.Commit(copy(b.Spare(), x))
}

func TestReserveCommitTruncateFree(t *testing.T) {
	var b Floats
	if b.Len() != 0 || b.Data() != nil {
		t.Fatalf("zero value: len %d, data %v", b.Len(), b.Data())
	}
	b.Truncate(0) // an empty buffer truncates to empty
	if err := b.Reserve(3); err != nil {
		t.Fatal(err)
	}
	before := &b.Data()[:1][0]
	if len(b.Spare()) < 3 {
		t.Fatalf("reserved 3, spare %d", len(b.Spare()))
	}
	add(t, &b, 1, 2)
	add(t, &b, 3)
	if &b.Data()[0] != before {
		t.Fatal("appending within the reservation moved the data")
	}
	// Growing beyond the reservation moves the values to a new mapping intact.
	add(t, &b, 4, 5)
	want := []float32{1, 2, 3, 4, 5}
	if got := b.Data(); len(got) != len(want) {
		t.Fatalf("len %d, want %d", len(got), len(want))
	}
	for i, v := range want {
		if b.Data()[i] != v {
			t.Fatalf("value %d = %v, want %v", i, b.Data()[i], v)
		}
	}
	b.Truncate(2)
	if b.Len() != 2 || b.Data()[1] != 2 {
		t.Fatalf("after truncate: %v", b.Data())
	}
	add(t, &b, 9)
	if b.Data()[2] != 9 {
		t.Fatalf("append after truncate: %v", b.Data())
	}
	b.Free()
	b.Free() // twice is harmless
	if b.Len() != 0 || b.Data() != nil {
		t.Fatal("buffer not empty after Free")
	}
	add(t, &b, 7)
	if b.Data()[0] != 7 {
		t.Fatalf("reuse after Free: %v", b.Data())
	}
	b.Free()
}

// Appending one value at a time remaps O(log n) times, not n times.
func TestSmallAppendsGrowGeometrically(t *testing.T) {
	var b Floats
	defer b.Free()
	remaps := 0
	var last *float32
	for i := range 1000 {
		add(t, &b, float32(i))
		if p := &b.Data()[0]; p != last {
			remaps, last = remaps+1, p
		}
	}
	for i, v := range b.Data() {
		if v != float32(i) {
			t.Fatalf("value %d = %v", i, v)
		}
	}
	if remaps > 40 {
		t.Fatalf("%d remaps for 1000 single-value appends", remaps)
	}
}

func TestReserveRejectsImpossibleSizes(t *testing.T) {
	var b Floats
	if err := b.Reserve(-1); err == nil {
		t.Fatal("negative reservation accepted")
	}
	if err := b.Reserve(maxInt / 2); !errors.Is(err, errs.ErrOutOfMemory) {
		t.Fatalf("a reservation beyond the address space: %v, want ErrOutOfMemory", err)
	}
	if b.Len() != 0 {
		t.Fatal("failed reservation changed the buffer")
	}
}

func TestTruncateAndCommitBeyondBoundsPanic(t *testing.T) {
	var b Floats
	defer b.Free()
	add(t, &b, 1)
	mustPanic(t, func() { b.Truncate(2) })
	mustPanic(t, func() { b.Commit(len(b.Spare()) + 1) })
}

func mustPanic(t *testing.T, f func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	f()
}

// vmSizeKiB is the process's virtual size from /proc/self/status.
func vmSizeKiB(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status:", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmSize:" {
			n, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Skip("no VmSize")
	return 0
}

// Free unmaps at once; an unreachable buffer's mapping is unmapped by the garbage
// collector's cleanup.
func TestMappingsAreReleased(t *testing.T) {
	const values = 256 << 20 // 1 GiB
	const gib = 1 << 20      // in KiB
	base := vmSizeKiB(t)
	var b Floats
	if err := b.Reserve(values); err != nil {
		t.Fatal(err)
	}
	if got := vmSizeKiB(t) - base; got < gib {
		t.Fatalf("reserving 1 GiB grew the address space by %d KiB", got)
	}
	b.Free()
	if got := vmSizeKiB(t) - base; got >= gib {
		t.Fatalf("Free left %d KiB mapped", got)
	}

	func() {
		lost := new(Floats)
		if err := lost.Reserve(values); err != nil {
			t.Fatal(err)
		}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for vmSizeKiB(t)-base >= gib {
		if time.Now().After(deadline) {
			t.Fatalf("an unreachable buffer still maps %d KiB", vmSizeKiB(t)-base)
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}
