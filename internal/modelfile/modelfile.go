// Package modelfile reads and writes libpatchcore's container format: a little-endian,
// versioned sequence of tagged, checksummed sections, written atomically.
//
// Layout:
//
//	offset 0   magic "PATCHCOR" (8 bytes)
//	offset 8   format version, uint32 (currently 1)
//	offset 12  section count, uint32 (at most MaxSections)
//	then, per section: tag [4]byte | length uint64 | CRC-32C of the payload uint32 | payload
//	trailer    CRC-32C of every preceding byte, uint32
//
// Decode validates the magic, the version, every length against the bytes present, every
// section checksum and the trailer before it returns anything, so a truncated or bit-flipped
// file is always refused with ErrFormat and nothing unchecked reaches FAISS or ONNX Runtime.
package modelfile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
)

// Magic starts every model file.
const Magic = "PATCHCOR"

// FormatVersion is the version this package writes. Readers accept versions 1..FormatVersion.
const FormatVersion = 1

// MaxSections bounds the section count a reader accepts.
const MaxSections = 64

const headerLen = 8 + 4 + 4
const sectionHeaderLen = 4 + 8 + 4

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrFormat is wrapped by every error about the content of a file or buffer.
var ErrFormat = errors.New("model file format error")

// Section is one tagged payload, e.g. {"MANI", json} or {"BANK", float32 rows}.
type Section struct {
	Tag     string // exactly 4 ASCII bytes
	Payload []byte
}

// Encode serialises sections into the container format.
func Encode(sections []Section) ([]byte, error) {
	if len(sections) > MaxSections {
		return nil, fmt.Errorf("modelfile: %d sections exceed the limit of %d", len(sections), MaxSections)
	}
	size := headerLen + 4
	for _, s := range sections {
		if len(s.Tag) != 4 {
			return nil, fmt.Errorf("modelfile: section tag %q is not 4 bytes", s.Tag)
		}
		size += sectionHeaderLen + len(s.Payload)
	}
	buf := bytes.NewBuffer(make([]byte, 0, size))
	buf.WriteString(Magic)
	var u32 [4]byte
	var u64 [8]byte
	binary.LittleEndian.PutUint32(u32[:], FormatVersion)
	buf.Write(u32[:])
	binary.LittleEndian.PutUint32(u32[:], uint32(len(sections)))
	buf.Write(u32[:])
	for _, s := range sections {
		buf.WriteString(s.Tag)
		binary.LittleEndian.PutUint64(u64[:], uint64(len(s.Payload)))
		buf.Write(u64[:])
		binary.LittleEndian.PutUint32(u32[:], crc32.Checksum(s.Payload, castagnoli))
		buf.Write(u32[:])
		buf.Write(s.Payload)
	}
	binary.LittleEndian.PutUint32(u32[:], crc32.Checksum(buf.Bytes(), castagnoli))
	buf.Write(u32[:])
	return buf.Bytes(), nil
}

// Decode parses and fully validates a container. The returned payloads alias b.
func Decode(b []byte) (version int, sections []Section, err error) {
	if len(b) < headerLen+4 {
		return 0, nil, fmt.Errorf("%w: %d bytes is too short for a model file", ErrFormat, len(b))
	}
	if string(b[:8]) != Magic {
		return 0, nil, fmt.Errorf("%w: not a libpatchcore model file (bad magic)", ErrFormat)
	}
	version = int(binary.LittleEndian.Uint32(b[8:12]))
	if version < 1 || version > FormatVersion {
		return 0, nil, fmt.Errorf("%w: format version %d is not supported (this library reads 1..%d)", ErrFormat, version, FormatVersion)
	}
	body, trailer := b[:len(b)-4], b[len(b)-4:]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(trailer) {
		return 0, nil, fmt.Errorf("%w: file checksum mismatch (truncated or corrupted)", ErrFormat)
	}
	count := binary.LittleEndian.Uint32(b[12:16])
	if count > MaxSections {
		return 0, nil, fmt.Errorf("%w: %d sections exceed the limit of %d", ErrFormat, count, MaxSections)
	}
	off := headerLen
	for i := uint32(0); i < count; i++ {
		if len(body)-off < sectionHeaderLen {
			return 0, nil, fmt.Errorf("%w: section %d header is truncated", ErrFormat, i)
		}
		tag := string(body[off : off+4])
		n := binary.LittleEndian.Uint64(body[off+4 : off+12])
		sum := binary.LittleEndian.Uint32(body[off+12 : off+16])
		off += sectionHeaderLen
		if n > uint64(len(body)-off) {
			return 0, nil, fmt.Errorf("%w: section %q claims %d bytes, %d remain", ErrFormat, tag, n, len(body)-off)
		}
		payload := body[off : off+int(n)]
		if crc32.Checksum(payload, castagnoli) != sum {
			return 0, nil, fmt.Errorf("%w: section %q checksum mismatch", ErrFormat, tag)
		}
		sections = append(sections, Section{Tag: tag, Payload: payload})
		off += int(n)
	}
	if off != len(body) {
		return 0, nil, fmt.Errorf("%w: %d unexpected bytes after the last section", ErrFormat, len(body)-off)
	}
	return version, sections, nil
}

// Find returns the payload of the first section with the tag.
func Find(sections []Section, tag string) ([]byte, bool) {
	for _, s := range sections {
		if s.Tag == tag {
			return s.Payload, true
		}
	}
	return nil, false
}

// WriteFileAtomic writes data to path so that path holds either its previous content or
// the complete new content, never a prefix: it writes a temporary file in the same
// directory, fsyncs it, renames it over path and fsyncs the directory. On any error the
// temporary file is removed and path is untouched.
func WriteFileAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = io.Copy(tmp, bytes.NewReader(data)); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Chmod(0o644); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if d, derr := os.Open(dir); derr == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
