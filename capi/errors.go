package main

/*
#include <stdlib.h>
#include <string.h>
#include "patchcore.h"

// The calling thread's last error message. A C->Go call runs on the caller's OS thread,
// so a C thread-local is exactly "per calling thread".
#define PC_ERR_CAP 2048
static _Thread_local char pc_err_msg[PC_ERR_CAP];
static _Thread_local size_t pc_err_len;

static void pc_set_error(const char* msg, size_t n) {
	if (n >= PC_ERR_CAP) n = PC_ERR_CAP - 1;
	memcpy(pc_err_msg, msg, n);
	pc_err_msg[n] = 0;
	pc_err_len = n;
}

static size_t pc_copy_error(char* buf, size_t cap) {
	if (buf != NULL && cap > 0) {
		size_t n = pc_err_len < cap - 1 ? pc_err_len : cap - 1;
		memcpy(buf, pc_err_msg, n);
		buf[n] = 0;
	}
	return pc_err_len + 1;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"unsafe"

	"github.com/libpatchcore/libpatchcore/core"
)

// Status codes, as numbered in include/patchcore.h.
const (
	statusOK              = C.PATCHCORE_OK
	statusInvalidArgument = C.PATCHCORE_ERR_INVALID_ARGUMENT
	statusInvalidHandle   = C.PATCHCORE_ERR_INVALID_HANDLE
	statusInvalidState    = C.PATCHCORE_ERR_INVALID_STATE
	statusBufferTooSmall  = C.PATCHCORE_ERR_BUFFER_TOO_SMALL
	statusIO              = C.PATCHCORE_ERR_IO
	statusFormat          = C.PATCHCORE_ERR_FORMAT
	statusOutOfMemory     = C.PATCHCORE_ERR_OUT_OF_MEMORY
	statusInternal        = C.PATCHCORE_ERR_INTERNAL
	statusUnsupported     = C.PATCHCORE_ERR_UNSUPPORTED
	statusBackend         = C.PATCHCORE_ERR_BACKEND
)

var statusNames = map[C.int32_t]*C.char{}

func init() {
	for code, name := range map[C.int32_t]string{
		statusOK: "PATCHCORE_OK", statusInvalidArgument: "PATCHCORE_ERR_INVALID_ARGUMENT",
		statusInvalidHandle: "PATCHCORE_ERR_INVALID_HANDLE", statusInvalidState: "PATCHCORE_ERR_INVALID_STATE",
		statusBufferTooSmall: "PATCHCORE_ERR_BUFFER_TOO_SMALL", statusIO: "PATCHCORE_ERR_IO",
		statusFormat: "PATCHCORE_ERR_FORMAT", statusOutOfMemory: "PATCHCORE_ERR_OUT_OF_MEMORY",
		statusInternal: "PATCHCORE_ERR_INTERNAL", statusUnsupported: "PATCHCORE_ERR_UNSUPPORTED",
		statusBackend: "PATCHCORE_ERR_BACKEND", -1: "PATCHCORE_ERR_UNKNOWN",
	} {
		statusNames[code] = C.CString(name) // static for the life of the process
	}
}

// apiError is an error with an explicit status, for conditions only the C layer knows.
type apiError struct {
	status C.int32_t
	msg    string
}

func (e *apiError) Error() string { return e.msg }

// errorf makes an apiError.
func errorf(status C.int32_t, format string, args ...any) error {
	return &apiError{status: status, msg: fmt.Sprintf(format, args...)}
}

// statusOf maps an error to its status code: the one place that does.
func statusOf(err error) C.int32_t {
	var ae *apiError
	switch {
	case err == nil:
		return statusOK
	case errors.As(err, &ae):
		return ae.status
	case errors.Is(err, core.ErrInvalidArgument):
		return statusInvalidArgument
	case errors.Is(err, core.ErrState):
		return statusInvalidState
	case errors.Is(err, core.ErrFormat):
		return statusFormat
	case errors.Is(err, core.ErrIO):
		return statusIO
	case errors.Is(err, core.ErrUnsupported):
		return statusUnsupported
	case errors.Is(err, core.ErrBackend):
		return statusBackend
	default:
		return statusInternal
	}
}

// fail records the message for the calling thread and returns the error's status.
func fail(fn string, err error) C.int32_t {
	setLastError(fn + ": " + err.Error())
	return statusOf(err)
}

func setLastError(msg string) {
	b := []byte(msg)
	if len(b) == 0 {
		C.pc_set_error(nil, 0)
		return
	}
	C.pc_set_error((*C.char)(unsafe.Pointer(&b[0])), C.size_t(len(b)))
}
