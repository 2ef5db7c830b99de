package tfjs

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/libpatchcore/libpatchcore/internal/errs"
)

// maxPackageFile bounds the size of one file read from a package tarball.
const maxPackageFile = 512 << 20

// ReadNPMPackage reads the bundled layers model in directory dir of an npm package
// tarball (the .tgz that `npm pack` writes; dir is relative to the package root, e.g.
// "dist/models/mobilenet_v2"). The directory must hold model.min.js and, for every
// shard path in its weights manifest, <path>.min.js. It also returns the SHA-256 of the
// tarball, hex-encoded.
func ReadNPMPackage(tgzPath, dir string) (*Model, string, error) {
	f, err := os.Open(tgzPath)
	if err != nil {
		return nil, "", fmt.Errorf("%w: open npm package: %v", errs.ErrIO, err)
	}
	defer f.Close()
	h := sha256.New()
	files, err := readTgzDir(io.TeeReader(f, h), dir)
	if err != nil {
		return nil, "", fmt.Errorf("npm package %s: %w", tgzPath, err)
	}
	// Hash whatever follows the gzip stream too, so the digest covers the whole file.
	if _, err := io.Copy(h, f); err != nil {
		return nil, "", fmt.Errorf("%w: read npm package: %v", errs.ErrIO, err)
	}
	m, err := parseBundledFiles(files, dir)
	if err != nil {
		return nil, "", fmt.Errorf("npm package %s: %w", tgzPath, err)
	}
	return m, hex.EncodeToString(h.Sum(nil)), nil
}

// readTgzDir returns the regular files directly inside package/<dir>/ of a gzipped tar
// stream, by base name.
func readTgzDir(r io.Reader, dir string) (map[string][]byte, error) {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("%w: not a gzip file: %v", errs.ErrFormat, err)
	}
	prefix := path.Join("package", path.Clean(dir)) + "/"
	files := map[string][]byte{}
	tr := tar.NewReader(gz)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: corrupt tar archive: %v", errs.ErrFormat, err)
		}
		name := path.Clean(hdr.Name)
		if hdr.Typeflag != tar.TypeReg || !strings.HasPrefix(name, prefix) || strings.Contains(name[len(prefix):], "/") {
			continue
		}
		if hdr.Size > maxPackageFile {
			return nil, fmt.Errorf("%w: %s is %d bytes, more than the %d allowed", errs.ErrFormat, name, hdr.Size, maxPackageFile)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return nil, fmt.Errorf("%w: corrupt tar archive at %s: %v", errs.ErrFormat, name, err)
		}
		files[name[len(prefix):]] = b
	}
	// Drain the gzip stream so its trailer checksum is verified.
	if _, err := io.Copy(io.Discard, gz); err != nil {
		return nil, fmt.Errorf("%w: corrupt gzip stream: %v", errs.ErrFormat, err)
	}
	return files, nil
}

// parseBundledFiles parses model.min.js and its .min.js shards from files (base name ->
// contents).
func parseBundledFiles(files map[string][]byte, dir string) (*Model, error) {
	src, ok := files["model.min.js"]
	if !ok {
		return nil, fmt.Errorf("%w: no %s/model.min.js", errs.ErrFormat, dir)
	}
	v, err := ExtractExport(src)
	if err != nil {
		return nil, fmt.Errorf("%s/model.min.js: %w", dir, err)
	}
	return Parse(v, func(p string) ([]byte, error) {
		name := p + ".min.js"
		b, ok := files[name]
		if !ok {
			return nil, fmt.Errorf("%w: weight shard %s/%s missing", errs.ErrFormat, dir, name)
		}
		shard, err := DecodeShardModule(b)
		if err != nil {
			return nil, fmt.Errorf("%s/%s: %w", dir, name, err)
		}
		return shard, nil
	})
}
