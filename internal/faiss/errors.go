package faiss

import (
	"fmt"

	"github.com/libpatchcore/libpatchcore/internal/errs"
)

// Errors of this package wrap libpatchcore's error kinds (package errs, re-exported by
// core): errs.ErrInvalidArgument for bad arguments and non-finite data, errs.ErrFormat for
// truncated, corrupted or unsupported serialized indexes, errs.ErrIO for file access,
// errs.ErrBackend for failures FAISS reports (with FAISS's message), and these two:
var (
	// ErrClosed is returned when an index is used after Close.
	ErrClosed = fmt.Errorf("%w: FAISS index used after Close", errs.ErrState)
	// ErrNoGPU is returned when GPU execution is requested from this CPU-only build.
	ErrNoGPU = fmt.Errorf("%w: libpatchcore was built without GPU support (FAISS CPU build)", errs.ErrUnsupported)
)
