// Package pickle reads and writes the small subset of Python's pickle format that the
// reference implementation's files use: a numpy array pickled with
// pickle.dump(array, f, pickle.HIGHEST_PROTOCOL) (nnscorer_features.pkl), and a dict of
// plain values (patchcore_params.pkl).
//
// The decoder is not a Python unpickler: it never executes anything. It understands the
// opcodes of protocols 0-5 that build None, bool, int, float, str, bytes, list, tuple and
// dict values, and it recognises by name only the few globals that numpy's pickles name
// (numpy.core.multiarray._reconstruct, numpy.ndarray, numpy.dtype,
// numpy.core.numeric._frombuffer, numpy.core.multiarray.scalar, and _codecs.encode for
// protocol-2 bytes); anything else is refused with an error wrapping errs.ErrFormat. Lengths
// read from the stream never cause allocations beyond the data actually present.
package pickle

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/libpatchcore/libpatchcore/internal/errs"
)

// Tuple is a decoded Python tuple.
type Tuple []any

// DictItem is one key/value pair of a decoded Python dict.
type DictItem struct {
	Key, Value any
}

// Dict is a decoded Python dict, in insertion order. (A Go map cannot hold every key a
// pickle may contain, tuples for instance.)
type Dict []DictItem

// Get returns the value stored under a string key.
func (d Dict) Get(key string) (any, bool) {
	for _, it := range d {
		if k, ok := it.Key.(string); ok && k == key {
			return it.Value, true
		}
	}
	return nil, false
}

// Decode reads one pickle from r and returns its value: nil (None), bool, int64 or
// *big.Int (int), float64, string, []byte (bytes and bytearray), []any (list), Tuple,
// Dict, *Array (numpy.ndarray), Dtype (a bare numpy.dtype), or for numpy scalars bool,
// int64, *big.Int or float64. Decoding ends at the pickle's STOP opcode; bytes after it
// are ignored (r may have been read past them).
func Decode(r io.Reader) (any, error) {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReader(r)
	}
	d := &decoder{r: br, memo: map[uint64]any{}}
	v, err := d.run()
	if err != nil {
		return nil, err
	}
	f := &finisher{done: map[any]any{}, active: map[any]bool{}}
	return f.finish(v, 0)
}

// Internal, mutable representations used while decoding. Containers are pointers so that
// memo references alias the same object, as in Python.
type (
	listObj   struct{ items []any }
	tupleObj  struct{ items []any }
	dictObj   struct{ items []DictItem }
	globalRef struct{ module, name string }
	arrayObj  struct {
		arr   Array
		built bool
	}
)

type decoder struct {
	r     *bufio.Reader
	pos   int64
	stack []any
	marks []int
	memo  map[uint64]any
}

const (
	maxLine       = 1 << 16 // longest text-mode argument (protocol 0 numbers, names)
	maxTextDigits = 4096    // longest decimal integer accepted from text opcodes
	maxLongBytes  = 1 << 16 // longest binary integer (LONG1/LONG4)
	maxNesting    = 1000    // deepest container nesting returned
)

func (d *decoder) errf(format string, args ...any) error {
	return fmt.Errorf("%w: pickle: at byte %d: %s", errs.ErrFormat, d.pos, fmt.Sprintf(format, args...))
}

func (d *decoder) byte1() (byte, error) {
	b, err := d.r.ReadByte()
	if err != nil {
		return 0, d.readErr(err)
	}
	d.pos++
	return b, nil
}

func (d *decoder) readErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return d.errf("unexpected end of data")
	}
	return fmt.Errorf("%w: pickle: at byte %d: read: %v", errs.ErrFormat, d.pos, err)
}

// bytesN reads n bytes, growing the buffer only as data actually arrives.
func (d *decoder) bytesN(n uint64) ([]byte, error) {
	if n > math.MaxInt64/2 {
		return nil, d.errf("length %d is too large", n)
	}
	const chunk = 1 << 20
	buf := make([]byte, 0, min(n, chunk))
	for uint64(len(buf)) < n {
		step := min(n-uint64(len(buf)), chunk)
		start := len(buf)
		buf = append(buf, make([]byte, step)...)
		m, err := io.ReadFull(d.r, buf[start:])
		d.pos += int64(m)
		if err != nil {
			return nil, d.readErr(err)
		}
	}
	return buf, nil
}

func (d *decoder) uint(n int) (uint64, error) {
	b, err := d.bytesN(uint64(n))
	if err != nil {
		return 0, err
	}
	var v uint64
	for i := n - 1; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v, nil
}

func (d *decoder) line() (string, error) {
	var sb strings.Builder
	for {
		c, err := d.byte1()
		if err != nil {
			return "", err
		}
		if c == '\n' {
			return strings.TrimSuffix(sb.String(), "\r"), nil
		}
		if sb.Len() >= maxLine {
			return "", d.errf("text argument longer than %d bytes", maxLine)
		}
		sb.WriteByte(c)
	}
}

func (d *decoder) push(v any) { d.stack = append(d.stack, v) }

func (d *decoder) pop() (any, error) {
	floor := 0
	if len(d.marks) > 0 {
		floor = d.marks[len(d.marks)-1]
	}
	if len(d.stack) <= floor {
		return nil, d.errf("stack underflow")
	}
	v := d.stack[len(d.stack)-1]
	d.stack = d.stack[:len(d.stack)-1]
	return v, nil
}

func (d *decoder) top() (any, error) {
	v, err := d.pop()
	if err == nil {
		d.push(v)
	}
	return v, err
}

// popOperands pops the operands of APPEND and SETITEM (the top n items, in stack order)
// or, batched, of APPENDS and SETITEMS (everything above the last MARK).
func (d *decoder) popOperands(batched bool, n int) ([]any, error) {
	if batched {
		return d.popMark()
	}
	items := make([]any, n)
	for i := n - 1; i >= 0; i-- {
		v, err := d.pop()
		if err != nil {
			return nil, err
		}
		items[i] = v
	}
	return items, nil
}

// popMark returns the items above the last MARK and removes them and the mark.
func (d *decoder) popMark() ([]any, error) {
	if len(d.marks) == 0 {
		return nil, d.errf("no MARK on the stack")
	}
	m := d.marks[len(d.marks)-1]
	d.marks = d.marks[:len(d.marks)-1]
	items := append([]any(nil), d.stack[m:]...)
	d.stack = d.stack[:m]
	return items, nil
}

// knownGlobals are the only callables a pickle may name, by "module.name".
var knownGlobals = map[string]string{
	"numpy.core.multiarray._reconstruct":  "reconstruct",
	"numpy._core.multiarray._reconstruct": "reconstruct",
	"numpy.ndarray":                       "ndarray",
	"numpy.dtype":                         "dtype",
	"numpy.core.numeric._frombuffer":      "frombuffer",
	"numpy._core.numeric._frombuffer":     "frombuffer",
	"numpy.core.multiarray.scalar":        "scalar",
	"numpy._core.multiarray.scalar":       "scalar",
	"_codecs.encode":                      "encode",
	"builtins.bytes":                      "bytes",
	"__builtin__.bytes":                   "bytes",
}

func (d *decoder) global(module, name string) error {
	key := module + "." + name
	if _, ok := knownGlobals[key]; !ok {
		return d.errf("refusing to load global %q: only numpy array globals are recognised", key)
	}
	d.push(globalRef{module, name})
	return nil
}

// run executes opcodes up to STOP and returns the single value left.
func (d *decoder) run() (any, error) {
	for {
		op, err := d.byte1()
		if err != nil {
			return nil, err
		}
		if op == '.' { // STOP
			if len(d.marks) != 0 || len(d.stack) != 1 {
				return nil, d.errf("STOP with %d stack items and %d open marks", len(d.stack), len(d.marks))
			}
			return d.stack[0], nil
		}
		if err := d.step(op); err != nil {
			return nil, err
		}
	}
}

func (d *decoder) step(op byte) error {
	switch op {
	case 0x80: // PROTO
		v, err := d.byte1()
		if err != nil {
			return err
		}
		if v > 5 {
			return d.errf("unsupported pickle protocol %d", v)
		}
	case 0x95: // FRAME: only a read-ahead hint
		_, err := d.uint(8)
		return err
	case '(': // MARK
		d.marks = append(d.marks, len(d.stack))
	case '0': // POP
		if len(d.stack) > 0 && (len(d.marks) == 0 || d.marks[len(d.marks)-1] < len(d.stack)) {
			d.stack = d.stack[:len(d.stack)-1]
			return nil
		}
		_, err := d.popMark()
		return err
	case '1': // POP_MARK
		_, err := d.popMark()
		return err
	case '2': // DUP
		v, err := d.top()
		if err != nil {
			return err
		}
		d.push(v)
	case 'N':
		d.push(nil)
	case 0x88:
		d.push(true)
	case 0x89:
		d.push(false)
	case 'I', 'L': // INT, LONG (text)
		s, err := d.line()
		if err != nil {
			return err
		}
		if op == 'I' && (s == "00" || s == "01") {
			d.push(s == "01")
			return nil
		}
		if op == 'L' {
			s = strings.TrimSuffix(s, "L")
		}
		v, err := d.parseInt(s)
		if err != nil {
			return err
		}
		d.push(v)
	case 'J': // BININT
		v, err := d.uint(4)
		if err != nil {
			return err
		}
		d.push(int64(int32(uint32(v))))
	case 'K': // BININT1
		v, err := d.uint(1)
		if err != nil {
			return err
		}
		d.push(int64(v))
	case 'M': // BININT2
		v, err := d.uint(2)
		if err != nil {
			return err
		}
		d.push(int64(v))
	case 0x8a, 0x8b: // LONG1, LONG4
		width := 1
		if op == 0x8b {
			width = 4
		}
		n, err := d.uint(width)
		if err != nil {
			return err
		}
		if op == 0x8b && int32(uint32(n)) < 0 || n > maxLongBytes {
			return d.errf("integer of %d bytes not supported", int32(uint32(n)))
		}
		b, err := d.bytesN(n)
		if err != nil {
			return err
		}
		d.push(longValue(b))
	case 'F': // FLOAT (text)
		s, err := d.line()
		if err != nil {
			return err
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return d.errf("bad float %q", s)
		}
		d.push(v)
	case 'G': // BINFLOAT, big-endian
		b, err := d.bytesN(8)
		if err != nil {
			return err
		}
		d.push(math.Float64frombits(binary.BigEndian.Uint64(b)))
	case 'T', 'U', 'B', 'C', 0x8e, 0x96, 'X', 0x8c, 0x8d:
		return d.sized(op)
	case 'V': // UNICODE (raw-unicode-escape text)
		s, err := d.line()
		if err != nil {
			return err
		}
		u, err := rawUnicodeEscape(s)
		if err != nil {
			return d.errf("%v", err)
		}
		d.push(u)
	case ']':
		d.push(&listObj{})
	case ')':
		d.push(&tupleObj{})
	case '}':
		d.push(&dictObj{})
	case 'l': // LIST
		items, err := d.popMark()
		if err != nil {
			return err
		}
		d.push(&listObj{items: items})
	case 't': // TUPLE
		items, err := d.popMark()
		if err != nil {
			return err
		}
		d.push(&tupleObj{items: items})
	case 0x85, 0x86, 0x87: // TUPLE1..3
		n := int(op-0x85) + 1
		items := make([]any, n)
		for i := n - 1; i >= 0; i-- {
			v, err := d.pop()
			if err != nil {
				return err
			}
			items[i] = v
		}
		d.push(&tupleObj{items: items})
	case 'd': // DICT
		items, err := d.popMark()
		if err != nil {
			return err
		}
		dict := &dictObj{}
		if err := d.setItems(dict, items); err != nil {
			return err
		}
		d.push(dict)
	case 'a', 'e': // APPEND, APPENDS
		items, err := d.popOperands(op == 'e', 1)
		if err != nil {
			return err
		}
		t, err := d.top()
		if err != nil {
			return err
		}
		l, ok := t.(*listObj)
		if !ok {
			return d.errf("APPEND to a %s, not a list", kindName(t))
		}
		l.items = append(l.items, items...)
	case 's', 'u': // SETITEM, SETITEMS
		items, err := d.popOperands(op == 'u', 2)
		if err != nil {
			return err
		}
		t, err := d.top()
		if err != nil {
			return err
		}
		dict, ok := t.(*dictObj)
		if !ok {
			return d.errf("SETITEM on a %s, not a dict", kindName(t))
		}
		return d.setItems(dict, items)
	case 'p', 'q', 'r', 0x94: // PUT, BINPUT, LONG_BINPUT, MEMOIZE
		var idx uint64
		var err error
		switch op {
		case 'p':
			idx, err = d.lineIndex()
		case 'q':
			idx, err = d.uint(1)
		case 'r':
			idx, err = d.uint(4)
		default:
			idx = uint64(len(d.memo))
		}
		if err != nil {
			return err
		}
		v, err := d.top()
		if err != nil {
			return err
		}
		d.memo[idx] = v
	case 'g', 'h', 'j': // GET, BINGET, LONG_BINGET
		var idx uint64
		var err error
		switch op {
		case 'g':
			idx, err = d.lineIndex()
		case 'h':
			idx, err = d.uint(1)
		default:
			idx, err = d.uint(4)
		}
		if err != nil {
			return err
		}
		v, ok := d.memo[idx]
		if !ok {
			return d.errf("memo key %d not defined", idx)
		}
		d.push(v)
	case 'c': // GLOBAL
		module, err := d.line()
		if err != nil {
			return err
		}
		name, err := d.line()
		if err != nil {
			return err
		}
		return d.global(module, name)
	case 0x93: // STACK_GLOBAL
		name, err := d.pop()
		if err != nil {
			return err
		}
		module, err := d.pop()
		if err != nil {
			return err
		}
		ms, ok1 := module.(string)
		ns, ok2 := name.(string)
		if !ok1 || !ok2 {
			return d.errf("STACK_GLOBAL needs two strings")
		}
		return d.global(ms, ns)
	case 'R': // REDUCE
		args, err := d.pop()
		if err != nil {
			return err
		}
		fn, err := d.pop()
		if err != nil {
			return err
		}
		g, ok := fn.(globalRef)
		at, ok2 := args.(*tupleObj)
		if !ok || !ok2 {
			return d.errf("REDUCE needs a recognised global and an argument tuple, got %s and %s", kindName(fn), kindName(args))
		}
		v, err := d.call(g, at.items)
		if err != nil {
			return err
		}
		d.push(v)
	case 'b': // BUILD
		state, err := d.pop()
		if err != nil {
			return err
		}
		t, err := d.top()
		if err != nil {
			return err
		}
		return d.build(t, state)
	default:
		return d.errf("opcode %s is not supported", opName(op))
	}
	return nil
}

// sized handles the length-prefixed string and bytes opcodes.
func (d *decoder) sized(op byte) error {
	width := map[byte]int{'T': 4, 'U': 1, 'B': 4, 'C': 1, 0x8e: 8, 0x96: 8, 'X': 4, 0x8c: 1, 0x8d: 8}[op]
	n, err := d.uint(width)
	if err != nil {
		return err
	}
	if op == 'T' && int32(uint32(n)) < 0 {
		return d.errf("negative string length")
	}
	b, err := d.bytesN(n)
	if err != nil {
		return err
	}
	switch op {
	case 'T', 'U': // Python 2 str: raw bytes, kept as a Go string
		d.push(string(b))
	case 'X', 0x8c, 0x8d:
		if !utf8.Valid(b) {
			return d.errf("string is not valid UTF-8")
		}
		d.push(string(b))
	default:
		d.push(b)
	}
	return nil
}

func (d *decoder) lineIndex() (uint64, error) {
	s, err := d.line()
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, d.errf("bad memo index %q", s)
	}
	return v, nil
}

func (d *decoder) parseInt(s string) (any, error) {
	if len(s) > maxTextDigits {
		return nil, d.errf("integer literal of %d characters not supported", len(s))
	}
	if v, err := strconv.ParseInt(s, 10, 64); err == nil {
		return v, nil
	}
	b, ok := new(big.Int).SetString(s, 10)
	if !ok {
		return nil, d.errf("bad integer %q", s)
	}
	return b, nil
}

// longValue decodes a little-endian two's-complement integer.
func longValue(b []byte) any {
	if len(b) == 0 {
		return int64(0)
	}
	if len(b) <= 8 {
		var v uint64
		for i := len(b) - 1; i >= 0; i-- {
			v = v<<8 | uint64(b[i])
		}
		shift := 64 - 8*uint(len(b))
		return int64(v<<shift) >> shift
	}
	be := make([]byte, len(b))
	for i := range b {
		be[len(b)-1-i] = b[i]
	}
	v := new(big.Int).SetBytes(be)
	if b[len(b)-1]&0x80 != 0 {
		v.Sub(v, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
	return normalizeInt(v)
}

// normalizeInt returns v as an int64 when it fits.
func normalizeInt(v *big.Int) any {
	if v.IsInt64() {
		return v.Int64()
	}
	return v
}

func (d *decoder) setItems(dict *dictObj, items []any) error {
	if len(items)%2 != 0 {
		return d.errf("odd number of dict items")
	}
	for i := 0; i < len(items); i += 2 {
		k, v := items[i], items[i+1]
		replaced := false
		if comparableKey(k) {
			for j := range dict.items {
				if comparableKey(dict.items[j].Key) && dict.items[j].Key == k {
					dict.items[j].Value = v
					replaced = true
					break
				}
			}
		}
		if !replaced {
			dict.items = append(dict.items, DictItem{k, v})
		}
	}
	return nil
}

// comparableKey reports whether a key is a plain value Python would compare by value.
func comparableKey(k any) bool {
	switch k.(type) {
	case nil, bool, int64, float64, string:
		return true
	}
	return false
}

// rawUnicodeEscape decodes Python's raw-unicode-escape: \uXXXX and \UXXXXXXXX escapes,
// every other byte a Latin-1 character.
func rawUnicodeEscape(s string) (string, error) {
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\\' && i+1 < len(s) && (s[i+1] == 'u' || s[i+1] == 'U') {
			n := 4
			if s[i+1] == 'U' {
				n = 8
			}
			if i+2+n > len(s) {
				return "", errors.New("truncated \\u escape")
			}
			v, err := strconv.ParseUint(s[i+2:i+2+n], 16, 32)
			if err != nil || v > utf8.MaxRune {
				return "", fmt.Errorf("bad \\u escape %q", s[i:i+2+n])
			}
			sb.WriteRune(rune(v))
			i += 1 + n
			continue
		}
		sb.WriteRune(rune(c))
	}
	return sb.String(), nil
}

func kindName(v any) string {
	switch v.(type) {
	case nil:
		return "None"
	case *listObj:
		return "list"
	case *tupleObj:
		return "tuple"
	case *dictObj:
		return "dict"
	case globalRef:
		return "global"
	case *arrayObj:
		return "numpy.ndarray"
	case *dtypeObj:
		return "numpy.dtype"
	}
	return fmt.Sprintf("%T", v)
}

var opNames = map[byte]string{
	'P': "PERSID", 'Q': "BINPERSID", 'i': "INST", 'o': "OBJ", 0x81: "NEWOBJ", 0x92: "NEWOBJ_EX",
	0x82: "EXT1", 0x83: "EXT2", 0x84: "EXT4", 0x8f: "EMPTY_SET", 0x90: "ADDITEMS", 0x91: "FROZENSET",
	0x97: "NEXT_BUFFER", 0x98: "READONLY_BUFFER", 'S': "STRING",
}

func opName(op byte) string {
	if n, ok := opNames[op]; ok {
		return n
	}
	return fmt.Sprintf("0x%02x", op)
}

// finisher converts the decoder's mutable objects into the exported value types, sharing
// converted objects that the pickle shares and refusing self-referencing structures.
type finisher struct {
	done   map[any]any
	active map[any]bool
}

func (f *finisher) finish(v any, depth int) (any, error) {
	if depth > maxNesting {
		return nil, fmt.Errorf("%w: pickle: containers nested deeper than %d", errs.ErrFormat, maxNesting)
	}
	switch o := v.(type) {
	case nil, bool, int64, *big.Int, float64, string, []byte:
		return v, nil
	case globalRef:
		return nil, fmt.Errorf("%w: pickle: bare reference to %s.%s", errs.ErrFormat, o.module, o.name)
	case *dtypeObj:
		return o.descr(), nil
	case *arrayObj:
		if !o.built {
			return nil, fmt.Errorf("%w: pickle: numpy array without its state (no BUILD)", errs.ErrFormat)
		}
		a := o.arr
		return &a, nil
	}
	if r, ok := f.done[v]; ok {
		return r, nil
	}
	if f.active[v] {
		return nil, fmt.Errorf("%w: pickle: self-referencing structures are not supported", errs.ErrFormat)
	}
	f.active[v] = true
	defer delete(f.active, v)
	var out any
	var err error
	switch o := v.(type) {
	case *listObj:
		out, err = f.items(o.items, depth)
	case *tupleObj:
		var items []any
		items, err = f.items(o.items, depth)
		out = Tuple(items)
	case *dictObj:
		dict := make(Dict, len(o.items))
		for i, it := range o.items {
			if dict[i].Key, err = f.finish(it.Key, depth+1); err != nil {
				break
			}
			if dict[i].Value, err = f.finish(it.Value, depth+1); err != nil {
				break
			}
		}
		out = dict
	default:
		return nil, fmt.Errorf("%w: pickle: unexpected value of type %T", errs.ErrFormat, v)
	}
	if err != nil {
		return nil, err
	}
	f.done[v] = out
	return out, nil
}

func (f *finisher) items(in []any, depth int) ([]any, error) {
	out := make([]any, len(in))
	for i, it := range in {
		var err error
		if out[i], err = f.finish(it, depth+1); err != nil {
			return nil, err
		}
	}
	return out, nil
}
