// Package errs defines libpatchcore's error kinds. core re-exports them (core.ErrFormat
// is errs.ErrFormat), so internal packages that core itself imports can classify their
// errors without an import cycle.
package errs

import "errors"

// The error kinds; see the re-exports in package core for their meaning.
var (
	ErrInvalidArgument = errors.New("invalid argument")
	ErrState           = errors.New("wrong state")
	ErrFormat          = errors.New("format error")
	ErrIO              = errors.New("i/o error")
	ErrUnsupported     = errors.New("unsupported")
	ErrBackend         = errors.New("backend error")
	ErrInternal        = errors.New("internal error")
	ErrOutOfMemory     = errors.New("out of memory")
)
