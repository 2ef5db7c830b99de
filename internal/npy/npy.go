// Package npy reads and writes NumPy .npy files (format versions 1.0-3.0) holding
// little-endian float32, int64 or uint8 arrays in C order: the exchange format of the
// golden test data and of the reference implementation's pickled feature arrays.
package npy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// Array is a decoded .npy array. Exactly one of F32, I64, U8 is set, matching Dtype.
type Array struct {
	Dtype string // "<f4", "<i8" or "|u1"
	Shape []int
	F32   []float32
	I64   []int64
	U8    []uint8
}

var (
	descrRe   = regexp.MustCompile(`'descr':\s*'([^']+)'`)
	fortranRe = regexp.MustCompile(`'fortran_order':\s*(True|False)`)
	shapeRe   = regexp.MustCompile(`'shape':\s*\(([^)]*)\)`)
)

// ErrFormat is wrapped by every decoding error.
var ErrFormat = errors.New("npy: bad format")

// ReadFile decodes the .npy file at path.
func ReadFile(path string) (*Array, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Decode(b)
}

// Decode parses an in-memory .npy file.
func Decode(b []byte) (*Array, error) {
	if len(b) < 10 || string(b[:6]) != "\x93NUMPY" {
		return nil, fmt.Errorf("%w: missing magic", ErrFormat)
	}
	major := b[6]
	var hlen, off int
	switch major {
	case 1:
		hlen, off = int(binary.LittleEndian.Uint16(b[8:10])), 10
	case 2, 3:
		if len(b) < 12 {
			return nil, fmt.Errorf("%w: truncated header", ErrFormat)
		}
		hlen, off = int(binary.LittleEndian.Uint32(b[8:12])), 12
	default:
		return nil, fmt.Errorf("%w: unknown version %d", ErrFormat, major)
	}
	if hlen < 0 || off+hlen > len(b) {
		return nil, fmt.Errorf("%w: truncated header", ErrFormat)
	}
	header := string(b[off : off+hlen])
	body := b[off+hlen:]
	m := descrRe.FindStringSubmatch(header)
	if m == nil {
		return nil, fmt.Errorf("%w: no descr in header", ErrFormat)
	}
	a := &Array{Dtype: m[1]}
	if f := fortranRe.FindStringSubmatch(header); f == nil || f[1] != "False" {
		return nil, fmt.Errorf("%w: only C-order arrays are supported", ErrFormat)
	}
	s := shapeRe.FindStringSubmatch(header)
	if s == nil {
		return nil, fmt.Errorf("%w: no shape in header", ErrFormat)
	}
	n := 1
	for _, part := range strings.Split(s[1], ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		d, err := strconv.Atoi(part)
		if err != nil || d < 0 || (d > 0 && n > math.MaxInt32/d) {
			return nil, fmt.Errorf("%w: bad shape %q", ErrFormat, s[1])
		}
		a.Shape = append(a.Shape, d)
		n *= d
	}
	var width int
	switch a.Dtype {
	case "<f4":
		width = 4
	case "<i8":
		width = 8
	case "|u1", "<u1":
		width = 1
	default:
		return nil, fmt.Errorf("%w: unsupported dtype %q", ErrFormat, a.Dtype)
	}
	if len(body) != n*width {
		return nil, fmt.Errorf("%w: body has %d bytes, shape %v needs %d", ErrFormat, len(body), a.Shape, n*width)
	}
	switch width {
	case 4:
		a.F32 = make([]float32, n)
		for i := range a.F32 {
			a.F32[i] = math.Float32frombits(binary.LittleEndian.Uint32(body[4*i:]))
		}
	case 8:
		a.I64 = make([]int64, n)
		for i := range a.I64 {
			a.I64[i] = int64(binary.LittleEndian.Uint64(body[8*i:]))
		}
	case 1:
		a.U8 = append([]uint8(nil), body...)
	}
	return a, nil
}

// EncodeFloat32 writes a float32 array with the given shape as a version 1.0 .npy file.
func EncodeFloat32(w io.Writer, data []float32, shape []int) error {
	var header bytes.Buffer
	header.WriteString("{'descr': '<f4', 'fortran_order': False, 'shape': (")
	for i, d := range shape {
		header.WriteString(strconv.Itoa(d))
		if i < len(shape)-1 || len(shape) == 1 {
			header.WriteString(",")
			if i < len(shape)-1 {
				header.WriteString(" ")
			}
		}
	}
	header.WriteString("), }")
	// Pad with spaces so that magic+len+header+'\n' is a multiple of 64 bytes.
	total := 10 + header.Len() + 1
	header.WriteString(strings.Repeat(" ", (64-total%64)%64))
	header.WriteByte('\n')
	if header.Len() > math.MaxUint16 {
		return fmt.Errorf("npy: header too long")
	}
	pre := []byte("\x93NUMPY\x01\x00\x00\x00")
	binary.LittleEndian.PutUint16(pre[8:], uint16(header.Len()))
	if _, err := w.Write(pre); err != nil {
		return err
	}
	if _, err := w.Write(header.Bytes()); err != nil {
		return err
	}
	buf := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
	}
	_, err := w.Write(buf)
	return err
}
