package faiss

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/libpatchcore/libpatchcore/internal/errs"
)

// FAISS's own reader trusts every length it reads: a corrupted count makes it allocate
// (and zero-fill) whatever the file claims, and a few fields are used unchecked. So every
// buffer is walked here first, field by field, following faiss/impl/index_read.cpp of
// FAISS 1.7.3, and handed to FAISS only when each length agrees with the bytes actually
// present. Only the two index kinds this library writes are accepted: IndexFlatL2 ("IxF2")
// and IndexIVFPQ ("IwPQ", with an IndexFlatL2 coarse quantizer and array inverted lists).

const (
	fourccFlatL2 = "IxF2"
	fourccIVFPQ  = "IwPQ"

	metricL2 = 1

	// maxDim bounds a stored dimension; FAISS stores d as an int32.
	maxDim = 1 << 24
	// maxPQBits bounds the bits per PQ code (FAISS's PQ codes use at most 16).
	maxPQBits = 16
)

// indexInfo describes a validated serialized index.
type indexInfo struct {
	kind   string // fourccFlatL2 or fourccIVFPQ
	d      int
	ntotal int64
}

// byteReader walks a serialized index, failing with errs.ErrFormat when the data runs out.
type byteReader struct {
	b   []byte
	off int
}

func (r *byteReader) remaining() uint64 { return uint64(len(r.b) - r.off) }

func (r *byteReader) take(n uint64, what string) ([]byte, error) {
	if n > r.remaining() {
		return nil, fmt.Errorf("%w: truncated at byte %d: %s needs %d bytes, %d left", errs.ErrFormat, r.off, what, n, r.remaining())
	}
	s := r.b[r.off : r.off+int(n)]
	r.off += int(n)
	return s, nil
}

func (r *byteReader) u8(what string) (byte, error) {
	s, err := r.take(1, what)
	if err != nil {
		return 0, err
	}
	return s[0], nil
}

func (r *byteReader) u32(what string) (uint32, error) {
	s, err := r.take(4, what)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(s), nil
}

func (r *byteReader) u64(what string) (uint64, error) {
	s, err := r.take(8, what)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(s), nil
}

func (r *byteReader) fourcc(what string) (string, error) {
	s, err := r.take(4, what)
	if err != nil {
		return "", err
	}
	return string(s), nil
}

func (r *byteReader) bool(what string) (bool, error) {
	v, err := r.u8(what)
	if err != nil {
		return false, err
	}
	if v > 1 {
		return false, fmt.Errorf("%w: %s is %d at byte %d, want 0 or 1", errs.ErrFormat, what, v, r.off-1)
	}
	return v == 1, nil
}

// floats reads n float32 values and rejects NaN and infinities.
func (r *byteReader) floats(n uint64, what string) error {
	if n > r.remaining()/4 {
		return fmt.Errorf("%w: truncated at byte %d: %s needs %d floats, %d bytes left", errs.ErrFormat, r.off, what, n, r.remaining())
	}
	s, _ := r.take(4*n, what)
	for i := 0; i < len(s); i += 4 {
		v := math.Float32frombits(binary.LittleEndian.Uint32(s[i:]))
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("%w: %s contains a non-finite value (%v) at element %d", errs.ErrFormat, what, v, i/4)
		}
	}
	return nil
}

// validateIndex checks a complete serialized index and describes it.
func validateIndex(b []byte) (indexInfo, error) {
	r := &byteReader{b: b}
	info, err := r.index(false)
	if err != nil {
		return indexInfo{}, err
	}
	if r.off != len(b) {
		return indexInfo{}, fmt.Errorf("%w: %d unexpected trailing bytes after the index", errs.ErrFormat, len(b)-r.off)
	}
	return info, nil
}

func (r *byteReader) index(nested bool) (indexInfo, error) {
	h, err := r.fourcc("index type")
	if err != nil {
		return indexInfo{}, err
	}
	switch {
	case h == fourccFlatL2:
		return r.flatL2()
	case h == fourccIVFPQ && !nested:
		return r.ivfPQ()
	case h == fourccIVFPQ:
		return indexInfo{}, fmt.Errorf("%w: an IVF-PQ index cannot be the coarse quantizer of another", errs.ErrFormat)
	}
	for _, c := range []byte(h) {
		if c < 0x20 || c > 0x7e {
			return indexInfo{}, fmt.Errorf("%w: not a FAISS index (type tag % x)", errs.ErrFormat, []byte(h))
		}
	}
	return indexInfo{}, fmt.Errorf("%w: FAISS index type %q is not supported (only IndexFlatL2 %q and IndexIVFPQ %q)", errs.ErrFormat, h, fourccFlatL2, fourccIVFPQ)
}

// header reads faiss::Index's common fields and requires the L2 metric.
func (r *byteReader) header() (d int, ntotal int64, trained bool, err error) {
	dd, err := r.u32("dimension")
	if err != nil {
		return 0, 0, false, err
	}
	if int32(dd) <= 0 || dd > maxDim {
		return 0, 0, false, fmt.Errorf("%w: dimension %d out of range (1..%d)", errs.ErrFormat, int32(dd), maxDim)
	}
	nt, err := r.u64("ntotal")
	if err != nil {
		return 0, 0, false, err
	}
	if int64(nt) < 0 {
		return 0, 0, false, fmt.Errorf("%w: negative vector count %d", errs.ErrFormat, int64(nt))
	}
	if _, err := r.take(16, "reserved header fields"); err != nil {
		return 0, 0, false, err
	}
	if trained, err = r.bool("is_trained flag"); err != nil {
		return 0, 0, false, err
	}
	metric, err := r.u32("metric type")
	if err != nil {
		return 0, 0, false, err
	}
	if metric != metricL2 {
		return 0, 0, false, fmt.Errorf("%w: metric type %d is not supported (only L2 = %d)", errs.ErrFormat, int32(metric), metricL2)
	}
	return int(dd), int64(nt), trained, nil
}

func (r *byteReader) flatL2() (indexInfo, error) {
	d, ntotal, trained, err := r.header()
	if err != nil {
		return indexInfo{}, err
	}
	if !trained {
		return indexInfo{}, fmt.Errorf("%w: flat index marked as untrained", errs.ErrFormat)
	}
	size, err := r.u64("vector storage length")
	if err != nil {
		return indexInfo{}, err
	}
	// ntotal*d must equal the stored length; compare without overflowing.
	if uint64(ntotal) > r.remaining()/4/uint64(d) || size != uint64(ntotal)*uint64(d) {
		return indexInfo{}, fmt.Errorf("%w: flat index of %d vectors of dimension %d stores %d floats (%d bytes left)", errs.ErrFormat, ntotal, d, size, r.remaining())
	}
	if err := r.floats(size, "flat index vectors"); err != nil {
		return indexInfo{}, err
	}
	return indexInfo{kind: fourccFlatL2, d: d, ntotal: ntotal}, nil
}

func (r *byteReader) ivfPQ() (indexInfo, error) {
	d, ntotal, trained, err := r.header()
	if err != nil {
		return indexInfo{}, err
	}
	if !trained {
		return indexInfo{}, fmt.Errorf("%w: IVF-PQ index is not trained", errs.ErrFormat)
	}
	nlist, err := r.u64("nlist")
	if err != nil {
		return indexInfo{}, err
	}
	nprobe, err := r.u64("nprobe")
	if err != nil {
		return indexInfo{}, err
	}
	q, err := r.index(true)
	if err != nil {
		return indexInfo{}, fmt.Errorf("coarse quantizer: %w", err)
	}
	if q.d != d || uint64(q.ntotal) != nlist || nlist == 0 {
		return indexInfo{}, fmt.Errorf("%w: coarse quantizer (d=%d, %d centroids) does not match the IVF index (d=%d, nlist=%d)", errs.ErrFormat, q.d, q.ntotal, d, nlist)
	}
	if nprobe == 0 || nprobe > nlist {
		return indexInfo{}, fmt.Errorf("%w: nprobe %d out of range (1..%d)", errs.ErrFormat, nprobe, nlist)
	}
	mapType, err := r.u8("direct map type")
	if err != nil {
		return indexInfo{}, err
	}
	mapLen, err := r.u64("direct map length")
	if err != nil {
		return indexInfo{}, err
	}
	if mapType != 0 || mapLen != 0 {
		return indexInfo{}, fmt.Errorf("%w: IVF direct maps are not supported (type %d, %d entries)", errs.ErrFormat, mapType, mapLen)
	}
	if _, err := r.bool("by_residual flag"); err != nil {
		return indexInfo{}, err
	}
	codeSize, err := r.u64("code size")
	if err != nil {
		return indexInfo{}, err
	}
	if err := r.productQuantizer(d, codeSize); err != nil {
		return indexInfo{}, err
	}
	if err := r.arrayInvertedLists(nlist, codeSize, ntotal); err != nil {
		return indexInfo{}, err
	}
	return indexInfo{kind: fourccIVFPQ, d: d, ntotal: ntotal}, nil
}

func (r *byteReader) productQuantizer(d int, codeSize uint64) error {
	pd, err := r.u64("PQ dimension")
	if err != nil {
		return err
	}
	m, err := r.u64("PQ sub-quantizer count")
	if err != nil {
		return err
	}
	nbits, err := r.u64("PQ bits per code")
	if err != nil {
		return err
	}
	if pd != uint64(d) || m == 0 || m > uint64(d) || uint64(d)%m != 0 || nbits == 0 || nbits > maxPQBits {
		return fmt.Errorf("%w: product quantizer d=%d M=%d nbits=%d is inconsistent with index dimension %d", errs.ErrFormat, pd, m, nbits, d)
	}
	if want := (m*nbits + 7) / 8; codeSize != want {
		return fmt.Errorf("%w: code size %d, product quantizer M=%d nbits=%d needs %d", errs.ErrFormat, codeSize, m, nbits, want)
	}
	n, err := r.u64("PQ centroid count")
	if err != nil {
		return err
	}
	if want := uint64(d) << nbits; n != want {
		return fmt.Errorf("%w: product quantizer stores %d centroid values, want %d", errs.ErrFormat, n, want)
	}
	return r.floats(n, "product quantizer centroids")
}

func (r *byteReader) arrayInvertedLists(nlist, codeSize uint64, ntotal int64) error {
	h, err := r.fourcc("inverted lists type")
	if err != nil {
		return err
	}
	if h != "ilar" {
		return fmt.Errorf("%w: inverted lists of type %q are not supported (only \"ilar\")", errs.ErrFormat, h)
	}
	n, err := r.u64("inverted list count")
	if err != nil {
		return err
	}
	cs, err := r.u64("inverted list code size")
	if err != nil {
		return err
	}
	if n != nlist || cs != codeSize {
		return fmt.Errorf("%w: inverted lists (%d lists, code size %d) do not match the index (%d, %d)", errs.ErrFormat, n, cs, nlist, codeSize)
	}
	listType, err := r.fourcc("inverted list size encoding")
	if err != nil {
		return err
	}
	count, err := r.u64("inverted list size table length")
	if err != nil {
		return err
	}
	if count > r.remaining()/8 {
		return fmt.Errorf("%w: inverted list size table of %d entries exceeds the %d bytes left", errs.ErrFormat, count, r.remaining())
	}
	table, _ := r.take(8*count, "inverted list size table")
	entry := func(i uint64) uint64 { return binary.LittleEndian.Uint64(table[8*i:]) }
	sizes := make([]uint64, nlist) // nlist is bounded by the quantizer's stored centroids
	switch listType {
	case "full":
		if count != nlist {
			return fmt.Errorf("%w: full inverted list size table has %d entries for %d lists", errs.ErrFormat, count, nlist)
		}
		for i := range sizes {
			sizes[i] = entry(uint64(i))
		}
	case "sprs":
		if count%2 != 0 {
			return fmt.Errorf("%w: sparse inverted list size table has an odd length %d", errs.ErrFormat, count)
		}
		for j := uint64(0); j < count; j += 2 {
			if entry(j) >= nlist {
				return fmt.Errorf("%w: sparse inverted list size table names list %d of %d", errs.ErrFormat, entry(j), nlist)
			}
			sizes[entry(j)] = entry(j + 1)
		}
	default:
		return fmt.Errorf("%w: inverted list size encoding %q not recognised", errs.ErrFormat, listType)
	}
	var total uint64
	for i, s := range sizes {
		if s > uint64(ntotal) || total+s > uint64(ntotal) {
			return fmt.Errorf("%w: inverted list %d holds %d entries, more than the index's %d vectors", errs.ErrFormat, i, s, ntotal)
		}
		total += s
	}
	if total != uint64(ntotal) {
		return fmt.Errorf("%w: inverted lists hold %d entries, the index claims %d vectors", errs.ErrFormat, total, ntotal)
	}
	for i, s := range sizes {
		if s == 0 {
			continue
		}
		if s > r.remaining()/(codeSize+8) {
			return fmt.Errorf("%w: truncated at byte %d: inverted list %d needs %d entries of %d bytes", errs.ErrFormat, r.off, i, s, codeSize+8)
		}
		r.off += int(s * codeSize)
		ids, _ := r.take(8*s, "inverted list ids")
		for j := uint64(0); j < s; j++ {
			if id := int64(binary.LittleEndian.Uint64(ids[8*j:])); id < 0 || id >= ntotal {
				return fmt.Errorf("%w: inverted list %d holds id %d outside 0..%d", errs.ErrFormat, i, id, ntotal-1)
			}
		}
	}
	return nil
}

// FlatVectors validates a serialized IndexFlatL2 (FAISS's "IxF2" format, as
// faiss.write_index writes it) and returns its dimension and its vectors, row-major,
// without involving FAISS.
func FlatVectors(b []byte) (d int, vectors []float32, err error) {
	info, err := validateIndex(b)
	if err != nil {
		return 0, nil, err
	}
	if info.kind != fourccFlatL2 {
		return 0, nil, fmt.Errorf("%w: index type %q is not a flat L2 index", errs.ErrFormat, info.kind)
	}
	n := int(info.ntotal) * info.d
	body := b[len(b)-4*n:] // the vectors end the file; validateIndex checked the lengths
	vectors = make([]float32, n)
	for i := range vectors {
		vectors[i] = math.Float32frombits(binary.LittleEndian.Uint32(body[4*i:]))
	}
	return info.d, vectors, nil
}
