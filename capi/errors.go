package main

/*
#cgo CFLAGS: -I${SRCDIR} -I${SRCDIR}/../include
#include <stdlib.h>
#include <string.h>
#include "capi.h"

#include <pthread.h>

// The calling thread's last error message. A C->Go call runs on the caller's OS thread,
// so per-thread storage is exactly "per calling thread". It lives in a heap buffer behind
// a pthread key (freed when the thread exits), not in a _Thread_local array: the Go
// runtime marks libpatchcore STATIC_TLS, and glibc refuses to dlopen a library whose
// static TLS block exceeds its small reserve (about 1.6 KB).
#define PC_ERR_CAP 2048
typedef struct {
	size_t len;
	char msg[PC_ERR_CAP];
} pc_err_t;

static pthread_key_t pc_err_key;
static pthread_once_t pc_err_once = PTHREAD_ONCE_INIT;

static void pc_err_key_init(void) { pthread_key_create(&pc_err_key, free); }

static pc_err_t* pc_err_get(int create) {
	pthread_once(&pc_err_once, pc_err_key_init);
	pc_err_t* e = (pc_err_t*)pthread_getspecific(pc_err_key);
	if (e == NULL && create) {
		e = (pc_err_t*)calloc(1, sizeof *e);
		if (e != NULL && pthread_setspecific(pc_err_key, e) != 0) {
			free(e);
			e = NULL;
		}
	}
	return e;
}

static void pc_set_error(const char* msg, size_t n) {
	pc_err_t* e = pc_err_get(n > 0);
	if (e == NULL) return; // no message slot (out of memory, or clearing an empty one)
	if (n >= PC_ERR_CAP) n = PC_ERR_CAP - 1;
	if (n > 0) memcpy(e->msg, msg, n);
	e->msg[n] = 0;
	e->len = n;
}

static size_t pc_copy_error(char* buf, size_t cap) {
	pc_err_t* e = pc_err_get(0);
	size_t len = e != NULL ? e->len : 0;
	if (buf != NULL && cap > 0) {
		size_t n = len < cap - 1 ? len : cap - 1;
		if (n > 0) memcpy(buf, e->msg, n);
		buf[n] = 0;
	}
	return len + 1;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"unicode/utf8"
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

// statusNames holds the static names patchcore_status_string returns.
var statusNames = map[C.int32_t]*C.pc_cchar{}

func init() {
	for code, name := range map[C.int32_t]string{
		statusOK: "PATCHCORE_OK", statusInvalidArgument: "PATCHCORE_ERR_INVALID_ARGUMENT",
		statusInvalidHandle: "PATCHCORE_ERR_INVALID_HANDLE", statusInvalidState: "PATCHCORE_ERR_INVALID_STATE",
		statusBufferTooSmall: "PATCHCORE_ERR_BUFFER_TOO_SMALL", statusIO: "PATCHCORE_ERR_IO",
		statusFormat: "PATCHCORE_ERR_FORMAT", statusOutOfMemory: "PATCHCORE_ERR_OUT_OF_MEMORY",
		statusInternal: "PATCHCORE_ERR_INTERNAL", statusUnsupported: "PATCHCORE_ERR_UNSUPPORTED",
		statusBackend: "PATCHCORE_ERR_BACKEND", -1: "PATCHCORE_ERR_UNKNOWN",
	} {
		statusNames[code] = (*C.pc_cchar)(C.CString(name)) // static for the life of the process
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
	case errors.Is(err, core.ErrOutOfMemory):
		return statusOutOfMemory
	default:
		return statusInternal
	}
}

// copyLastError copies the calling thread's last message into buf (see
// patchcore_last_error) and returns the size it needs, including the NUL.
func copyLastError(buf *C.char, capacity C.size_t) C.size_t {
	return C.pc_copy_error(buf, capacity)
}

// statusName is the static name of a status code, "PATCHCORE_ERR_UNKNOWN" for others.
func statusName(code C.int32_t) *C.pc_cchar {
	if p, ok := statusNames[code]; ok {
		return p
	}
	return statusNames[-1]
}

// fail records the message for the calling thread and returns the error's status.
func fail(fn string, err error) C.int32_t {
	setLastError(fn + ": " + err.Error())
	return statusOf(err)
}

// setLastError stores msg as the calling thread's last error message, cut before a UTF-8
// character that does not fit the buffer whole.
func setLastError(msg string) {
	b := []byte(msg)
	if len(b) >= C.PC_ERR_CAP {
		n := C.PC_ERR_CAP - 1
		for i := 0; i < utf8.UTFMax-1 && !utf8.RuneStart(b[n]); i++ {
			n--
		}
		b = b[:n]
	}
	if len(b) == 0 {
		C.pc_set_error(nil, 0)
		return
	}
	C.pc_set_error((*C.char)(unsafe.Pointer(&b[0])), C.size_t(len(b)))
}
