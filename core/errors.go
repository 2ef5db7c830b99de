package core

import "errors"

// Error kinds. Every error returned by this package wraps exactly one of them, so callers
// (and the C ABI, which maps them to status codes) can classify failures with errors.Is.
var (
	// ErrInvalidArgument: a parameter is out of range, a shape is wrong, data contains NaN.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrState: the object is not in a state that allows the call (e.g. predict before fit).
	ErrState = errors.New("wrong state")
	// ErrFormat: a file or buffer is truncated, corrupted, of another version or kind.
	ErrFormat = errors.New("format error")
	// ErrIO: the operating system refused a read or write.
	ErrIO = errors.New("i/o error")
	// ErrUnsupported: the build or the loaded runtime lacks a feature (e.g. GPU support).
	ErrUnsupported = errors.New("unsupported")
	// ErrBackend: FAISS or ONNX Runtime reported a failure.
	ErrBackend = errors.New("backend error")
	// ErrInternal: a bug in the library (an invariant broke, a panic was recovered).
	ErrInternal = errors.New("internal error")
)
