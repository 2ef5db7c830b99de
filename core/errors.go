package core

import "github.com/libpatchcore/libpatchcore/internal/errs"

// Error kinds. Every error returned by this package wraps exactly one of them, so callers
// (and the C ABI, which maps them to status codes) can classify failures with errors.Is.
var (
	// ErrInvalidArgument: a parameter is out of range, a shape is wrong, data contains NaN.
	ErrInvalidArgument = errs.ErrInvalidArgument
	// ErrState: the object is not in a state that allows the call (e.g. predict before fit).
	ErrState = errs.ErrState
	// ErrFormat: a file or buffer is truncated, corrupted, of another version or kind.
	ErrFormat = errs.ErrFormat
	// ErrIO: the operating system refused a read or write.
	ErrIO = errs.ErrIO
	// ErrUnsupported: the build or the loaded runtime lacks a feature (e.g. GPU support).
	ErrUnsupported = errs.ErrUnsupported
	// ErrBackend: FAISS or ONNX Runtime reported a failure.
	ErrBackend = errs.ErrBackend
	// ErrInternal: a bug in the library (an invariant broke, a panic was recovered).
	ErrInternal = errs.ErrInternal
	// ErrOutOfMemory: the operating system refused memory the call needs.
	ErrOutOfMemory = errs.ErrOutOfMemory
)
