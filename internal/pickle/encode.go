package pickle

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"

	"github.com/libpatchcore/libpatchcore/internal/errs"
)

// EncodeFloat32Array writes data (C order) as a pickled numpy float32 array of the given
// shape, in protocol 4 with the same opcodes numpy and Python use for protocol 4
// (numpy.core.multiarray._reconstruct plus a BUILD state), so that pickle.load in any
// Python 3 with numpy returns an equal ndarray.
func EncodeFloat32Array(w io.Writer, data []float32, shape []int) error {
	n := 1
	for _, d := range shape {
		if d < 0 || (d != 0 && n > math.MaxInt/4/d) {
			return fmt.Errorf("%w: pickle: bad shape %v", errs.ErrInvalidArgument, shape)
		}
		n *= d
	}
	if n != len(data) {
		return fmt.Errorf("%w: pickle: shape %v needs %d values, got %d", errs.ErrInvalidArgument, shape, n, len(data))
	}
	bw := bufio.NewWriter(w)
	e := &encoder{w: bw}
	e.op(0x80, 4) // PROTO 4
	e.global("numpy.core.multiarray", "_reconstruct")
	e.global("numpy", "ndarray")
	e.int(0)
	e.op(0x85)        // TUPLE1: (0,)
	e.op('C', 1, 'b') // SHORT_BINBYTES b'b'
	e.op(0x87, 'R')   // TUPLE3, REDUCE
	e.op('(')         // MARK: the state tuple
	e.int(1)          // state version
	e.tuple(shape)    // shape
	e.global("numpy", "dtype")
	e.str("f4")
	e.op(0x89, 0x88, 0x87, 'R') // (code, False, True) TUPLE3 REDUCE
	e.op('(')
	e.int(3)
	e.str("<")
	e.op('N', 'N', 'N')
	e.int(-1)
	e.int(-1)
	e.int(0)
	e.op('t', 'b') // dtype state TUPLE, BUILD
	e.op(0x89)     // is_fortran False
	size := uint64(4 * len(data))
	if size < 1<<32 {
		e.op('B')
		e.u32(uint32(size))
	} else {
		e.op(0x8e)
		e.u64(size)
	}
	var buf [4096]byte
	for i := 0; i < len(data) && e.err == nil; {
		m := min(len(data)-i, len(buf)/4)
		for j := 0; j < m; j++ {
			binary.LittleEndian.PutUint32(buf[4*j:], math.Float32bits(data[i+j]))
		}
		_, e.err = bw.Write(buf[:4*m])
		i += m
	}
	e.op('t', 'b', '.') // state TUPLE, BUILD, STOP
	if e.err != nil {
		return fmt.Errorf("%w: pickle: writing: %v", errs.ErrIO, e.err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("%w: pickle: writing: %v", errs.ErrIO, err)
	}
	return nil
}

// encoder writes opcodes, keeping the first write error.
type encoder struct {
	w   *bufio.Writer
	err error
}

func (e *encoder) op(b ...byte) {
	if e.err == nil {
		_, e.err = e.w.Write(b)
	}
}

func (e *encoder) u32(v uint32) {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], v)
	e.op(b[:]...)
}

func (e *encoder) u64(v uint64) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	e.op(b[:]...)
}

// str writes a short str (SHORT_BINUNICODE; all strings written here are under 256 bytes).
func (e *encoder) str(s string) {
	e.op(0x8c, byte(len(s)))
	e.op([]byte(s)...)
}

func (e *encoder) global(module, name string) {
	e.str(module)
	e.str(name)
	e.op(0x93) // STACK_GLOBAL
}

// int writes an int with the shortest opcode Python would use.
func (e *encoder) int(v int) {
	switch {
	case v >= 0 && v < 1<<8:
		e.op('K', byte(v))
	case v >= 0 && v < 1<<16:
		e.op('M', byte(v), byte(v>>8))
	case v >= math.MinInt32 && v <= math.MaxInt32:
		e.op('J')
		e.u32(uint32(int32(v)))
	default:
		e.op(0x8a, 8) // LONG1 with 8 bytes
		e.u64(uint64(v))
	}
}

func (e *encoder) tuple(items []int) {
	if len(items) == 0 {
		e.op(')')
		return
	}
	if len(items) > 3 {
		e.op('(')
	}
	for _, v := range items {
		e.int(v)
	}
	if len(items) > 3 {
		e.op('t')
	} else {
		e.op(0x85 + byte(len(items)-1))
	}
}
