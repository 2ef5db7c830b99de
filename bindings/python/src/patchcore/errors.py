"""Exceptions raised by the patchcore binding.

Every failing library call raises a subclass of :class:`PatchCoreError` chosen by its
status code (``PATCHCORE_ERR_*`` in ``patchcore.h``). The exception carries the status code
(``status``), its name (``status_name``) and the library's message for the failing call
(``message``, also ``str(exc)``), which names the function and the offending value or path.
Checks the binding makes itself before calling the library raise the same classes with the
same status codes, so callers need to handle only one hierarchy.
"""

from __future__ import annotations

OK = 0
ERR_INVALID_ARGUMENT = 1
ERR_INVALID_HANDLE = 2
ERR_INVALID_STATE = 3
ERR_BUFFER_TOO_SMALL = 4
ERR_IO = 5
ERR_FORMAT = 6
ERR_OUT_OF_MEMORY = 7
ERR_INTERNAL = 8
ERR_UNSUPPORTED = 9
ERR_BACKEND = 10

_STATUS_NAMES = {
    ERR_INVALID_ARGUMENT: "PATCHCORE_ERR_INVALID_ARGUMENT",
    ERR_INVALID_HANDLE: "PATCHCORE_ERR_INVALID_HANDLE",
    ERR_INVALID_STATE: "PATCHCORE_ERR_INVALID_STATE",
    ERR_BUFFER_TOO_SMALL: "PATCHCORE_ERR_BUFFER_TOO_SMALL",
    ERR_IO: "PATCHCORE_ERR_IO",
    ERR_FORMAT: "PATCHCORE_ERR_FORMAT",
    ERR_OUT_OF_MEMORY: "PATCHCORE_ERR_OUT_OF_MEMORY",
    ERR_INTERNAL: "PATCHCORE_ERR_INTERNAL",
    ERR_UNSUPPORTED: "PATCHCORE_ERR_UNSUPPORTED",
    ERR_BACKEND: "PATCHCORE_ERR_BACKEND",
}


class PatchCoreError(Exception):
    """Base class of every error of the library and of the binding.

    Attributes:
        status: the ``PATCHCORE_ERR_*`` code.
        status_name: its name, e.g. ``"PATCHCORE_ERR_FORMAT"``.
        message: the library's (or the binding's) explanation.
    """

    #: Status code of the class; subclasses override it.
    default_status = 0

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = self.default_status if status is None else status
        self.status_name = _STATUS_NAMES.get(self.status, "PATCHCORE_ERR_UNKNOWN")
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __reduce__(self):
        return (type(self), (self.message, self.status))


class InvalidArgumentError(PatchCoreError, ValueError):
    """A parameter is missing, out of range, of the wrong shape or dtype, or not finite."""

    default_status = ERR_INVALID_ARGUMENT


class InvalidHandleError(PatchCoreError):
    """The object was closed (freed) or its handle is unknown to the library."""

    default_status = ERR_INVALID_HANDLE


class InvalidStateError(PatchCoreError):
    """The object is in the wrong state: predict before fit, uncalibrated threshold, ..."""

    default_status = ERR_INVALID_STATE


class BufferTooSmallError(PatchCoreError):
    """An output buffer was too small (the binding sizes its buffers, so this is rare)."""

    default_status = ERR_BUFFER_TOO_SMALL


class PatchCoreIOError(PatchCoreError, OSError):
    """The operating system refused a read or write (missing file, read-only folder...)."""

    default_status = ERR_IO


class FormatError(PatchCoreError):
    """A file or buffer is truncated, corrupted, of an unknown version or the wrong kind."""

    default_status = ERR_FORMAT


class OutOfMemoryError(PatchCoreError, MemoryError):
    """An allocation failed or a request exceeds the library's size limits."""

    default_status = ERR_OUT_OF_MEMORY


class InternalError(PatchCoreError):
    """A bug inside the library; the object involved is unusable afterwards."""

    default_status = ERR_INTERNAL


class UnsupportedError(PatchCoreError):
    """This build, the loaded runtime or the environment lacks a feature (GPU, PyTorch...)."""

    default_status = ERR_UNSUPPORTED


class BackendError(PatchCoreError):
    """FAISS or ONNX Runtime reported a failure."""

    default_status = ERR_BACKEND


_CLASSES = {
    cls.default_status: cls
    for cls in (
        InvalidArgumentError,
        InvalidHandleError,
        InvalidStateError,
        BufferTooSmallError,
        PatchCoreIOError,
        FormatError,
        OutOfMemoryError,
        InternalError,
        UnsupportedError,
        BackendError,
    )
}


def error_for_status(status: int, message: str) -> PatchCoreError:
    """Returns the exception for a non-zero status code (PatchCoreError for unknown codes)."""
    return _CLASSES.get(status, PatchCoreError)(message, status)


__all__ = [
    "PatchCoreError",
    "InvalidArgumentError",
    "InvalidHandleError",
    "InvalidStateError",
    "BufferTooSmallError",
    "PatchCoreIOError",
    "FormatError",
    "OutOfMemoryError",
    "InternalError",
    "UnsupportedError",
    "BackendError",
    "error_for_status",
]
