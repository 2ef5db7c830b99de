package pickle

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"strconv"

	"github.com/libpatchcore/libpatchcore/internal/errs"
)

// Dtype is a numpy type string as in .npy headers: byte order ('<', '>' or '|' for
// one-byte types), kind (b bool, i signed, u unsigned, f float) and item size, e.g. "<f4".
type Dtype string

// Array is a decoded numpy.ndarray of a numeric dtype.
type Array struct {
	Dtype   Dtype
	Shape   []int
	Fortran bool   // Data is in column-major (Fortran) order
	Data    []byte // the raw elements, Size()*itemsize bytes
}

// Size is the number of elements (-1 if the shape is invalid or overflows).
func (a *Array) Size() int {
	n := 1
	for _, d := range a.Shape {
		if d < 0 || (d != 0 && n > math.MaxInt/d) {
			return -1
		}
		n *= d
	}
	return n
}

// Float32 returns the elements in C (row-major) order as float32. It accepts float32
// arrays and converts float64 ones (rounding), in either byte order; other dtypes and
// Fortran-ordered arrays of more than one dimension are refused.
func (a *Array) Float32() ([]float32, error) {
	if a.Fortran && len(a.Shape) > 1 {
		return nil, fmt.Errorf("%w: pickle: Fortran-ordered array of shape %v (want C order)", errs.ErrFormat, a.Shape)
	}
	width := map[Dtype]int{"<f4": 4, ">f4": 4, "<f8": 8, ">f8": 8}[a.Dtype]
	if width == 0 {
		return nil, fmt.Errorf("%w: pickle: array of dtype %q is not floating point", errs.ErrFormat, a.Dtype)
	}
	n := a.Size()
	if n < 0 || n > len(a.Data)/width || len(a.Data) != n*width {
		return nil, fmt.Errorf("%w: pickle: array of shape %v and dtype %s has %d data bytes", errs.ErrFormat, a.Shape, a.Dtype, len(a.Data))
	}
	var order binary.ByteOrder = binary.LittleEndian
	if a.Dtype[0] == '>' {
		order = binary.BigEndian
	}
	out := make([]float32, n)
	switch width {
	case 4:
		for i := range out {
			out[i] = math.Float32frombits(order.Uint32(a.Data[4*i:]))
		}
	default:
		for i := range out {
			out[i] = float32(math.Float64frombits(order.Uint64(a.Data[8*i:])))
		}
	}
	return out, nil
}

// dtypeObj is a numpy.dtype under construction.
type dtypeObj struct {
	kind  byte // 'b', 'i', 'u' or 'f'
	size  int
	order byte // '<', '>' or '|'
}

func (t *dtypeObj) descr() Dtype {
	return Dtype(string(t.order) + string(t.kind) + strconv.Itoa(t.size))
}

// newDtype parses the type code numpy pickles for a dtype, kind letter plus item size.
func newDtype(code string) (*dtypeObj, error) {
	ok := map[string]bool{"b1": true, "i1": true, "i2": true, "i4": true, "i8": true,
		"u1": true, "u2": true, "u4": true, "u8": true, "f4": true, "f8": true}
	if !ok[code] {
		return nil, fmt.Errorf("numpy dtype %q is not supported (numeric types only)", code)
	}
	t := &dtypeObj{kind: code[0], size: int(code[1] - '0'), order: '<'}
	if t.size == 1 {
		t.order = '|'
	}
	return t, nil
}

// call applies one of the recognised globals to its arguments.
func (d *decoder) call(g globalRef, args []any) (any, error) {
	switch knownGlobals[g.module+"."+g.name] {
	case "reconstruct": // _reconstruct(ndarray, (0,), b'b'): an empty array, filled by BUILD
		if len(args) != 3 || args[0] != (globalRef{"numpy", "ndarray"}) {
			return nil, d.errf("_reconstruct must be called on numpy.ndarray")
		}
		return &arrayObj{}, nil
	case "dtype": // dtype(code, align, copy)
		if len(args) < 1 || len(args) > 3 {
			return nil, d.errf("numpy.dtype takes 1 to 3 arguments, got %d", len(args))
		}
		code, ok := args[0].(string)
		if !ok {
			return nil, d.errf("numpy.dtype code is a %s, not a string", kindName(args[0]))
		}
		t, err := newDtype(code)
		if err != nil {
			return nil, d.errf("%v", err)
		}
		return t, nil
	case "frombuffer": // _frombuffer(buffer, dtype, shape, order): protocol 5
		if len(args) != 4 {
			return nil, d.errf("_frombuffer takes 4 arguments, got %d", len(args))
		}
		order, ok := args[3].(string)
		if !ok || (order != "C" && order != "F") {
			return nil, d.errf("_frombuffer order must be 'C' or 'F'")
		}
		a, err := d.array(args[2], args[1], order == "F", args[0])
		if err != nil {
			return nil, err
		}
		return &arrayObj{arr: a, built: true}, nil
	case "scalar": // scalar(dtype, raw bytes): a numpy scalar
		if len(args) != 2 {
			return nil, d.errf("numpy scalar takes 2 arguments, got %d", len(args))
		}
		t, ok := args[0].(*dtypeObj)
		raw, ok2 := rawBytes(args[1])
		if !ok || !ok2 || len(raw) != t.size {
			return nil, d.errf("malformed numpy scalar")
		}
		return scalarValue(t, raw), nil
	case "encode": // _codecs.encode(text, "latin1"): bytes in protocols 0-2
		if len(args) != 2 {
			return nil, d.errf("_codecs.encode takes 2 arguments, got %d", len(args))
		}
		s, ok := args[0].(string)
		enc, ok2 := args[1].(string)
		if !ok || !ok2 || (enc != "latin1" && enc != "latin-1") {
			return nil, d.errf("only _codecs.encode(str, 'latin1') is supported")
		}
		out := make([]byte, 0, len(s))
		for _, r := range s {
			if r > 0xff {
				return nil, d.errf("character %U is not Latin-1", r)
			}
			out = append(out, byte(r))
		}
		return out, nil
	case "bytes": // bytes(): the empty bytes object in protocols 0-2
		if len(args) != 0 {
			return nil, d.errf("only bytes() without arguments is supported")
		}
		return []byte{}, nil
	}
	return nil, d.errf("%s.%s cannot be called", g.module, g.name)
}

// build applies a BUILD state to a numpy object.
func (d *decoder) build(target, state any) error {
	st, ok := state.(*tupleObj)
	if !ok {
		return d.errf("BUILD state is a %s, not a tuple", kindName(state))
	}
	s := st.items
	switch t := target.(type) {
	case *dtypeObj:
		// (version, byteorder, subarray, names, fields, elsize, alignment, flags[, metadata])
		if len(s) != 8 && len(s) != 9 {
			return d.errf("numpy.dtype state has %d items", len(s))
		}
		order, ok := s[1].(string)
		if !ok || s[2] != nil || s[3] != nil || s[4] != nil {
			return d.errf("structured or sub-array numpy dtypes are not supported")
		}
		switch {
		case t.size == 1:
			t.order = '|'
		case order == "<" || order == "=":
			t.order = '<'
		case order == ">":
			t.order = '>'
		default:
			return d.errf("byte order %q for a %d-byte dtype", order, t.size)
		}
		return nil
	case *arrayObj:
		if t.built {
			return d.errf("numpy array state set twice")
		}
		// (version, shape, dtype, is_fortran, data) or, older, without the version.
		if len(s) == 5 {
			s = s[1:]
		}
		if len(s) != 4 {
			return d.errf("numpy array state has %d items", len(st.items))
		}
		fortran, ok := s[2].(bool)
		if !ok {
			i, isInt := s[2].(int64)
			if !isInt || (i != 0 && i != 1) {
				return d.errf("numpy array fortran flag is a %s", kindName(s[2]))
			}
			fortran = i == 1
		}
		a, err := d.array(s[0], s[1], fortran, s[3])
		if err != nil {
			return err
		}
		t.arr, t.built = a, true
		return nil
	}
	return d.errf("BUILD on a %s is not supported", kindName(target))
}

// array assembles an Array from pickled shape, dtype and raw data.
func (d *decoder) array(shape, dtype any, fortran bool, data any) (Array, error) {
	t, ok := dtype.(*dtypeObj)
	if !ok {
		return Array{}, d.errf("numpy array dtype is a %s", kindName(dtype))
	}
	st, ok := shape.(*tupleObj)
	if !ok {
		return Array{}, d.errf("numpy array shape is a %s, not a tuple", kindName(shape))
	}
	dims := make([]int, len(st.items))
	n := uint64(1)
	for i, v := range st.items {
		x, ok := v.(int64)
		if !ok || x < 0 || x > math.MaxInt32 {
			return Array{}, d.errf("bad numpy array dimension %v", v)
		}
		dims[i] = int(x)
		if x != 0 && n > math.MaxInt64/uint64(x)/uint64(t.size) {
			return Array{}, d.errf("numpy array shape %v overflows", dims)
		}
		n *= uint64(x)
	}
	raw, ok := rawBytes(data)
	if !ok {
		return Array{}, d.errf("numpy array data is a %s (object arrays are not supported)", kindName(data))
	}
	if uint64(len(raw)) != n*uint64(t.size) {
		return Array{}, d.errf("numpy array of shape %v and dtype %s needs %d bytes, has %d", dims, t.descr(), n*uint64(t.size), len(raw))
	}
	return Array{Dtype: t.descr(), Shape: dims, Fortran: fortran, Data: raw}, nil
}

// rawBytes accepts bytes, bytearray, and Python 2 str (decoded as a byte string).
func rawBytes(v any) ([]byte, bool) {
	switch b := v.(type) {
	case []byte:
		return b, true
	case string:
		return []byte(b), true
	}
	return nil, false
}

func scalarValue(t *dtypeObj, raw []byte) any {
	var order binary.ByteOrder = binary.LittleEndian
	if t.order == '>' {
		order = binary.BigEndian
	}
	var u uint64
	switch t.size {
	case 1:
		u = uint64(raw[0])
	case 2:
		u = uint64(order.Uint16(raw))
	case 4:
		u = uint64(order.Uint32(raw))
	case 8:
		u = order.Uint64(raw)
	}
	shift := 64 - 8*uint(t.size)
	switch t.kind {
	case 'b':
		return u != 0
	case 'i':
		return int64(u<<shift) >> shift
	case 'u':
		return normalizeInt(new(big.Int).SetUint64(u))
	case 'f':
		if t.size == 4 {
			return float64(math.Float32frombits(uint32(u)))
		}
		return math.Float64frombits(u)
	}
	return nil
}
