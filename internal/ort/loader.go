// Package ort runs ONNX models with ONNX Runtime, loaded at run time from a shared library
// (through github.com/yalue/onnxruntime_go, which dlopens it).
//
// # Finding the runtime
//
// The runtime is loaded once per process, on the first call that needs it (Init, or a
// session creation), under a lock. The library file is looked up in this order:
//
//  1. the path given to SetLibraryPath, when one was given;
//  2. otherwise the path in the environment variable PATCHCORE_ORT_LIBRARY, when set;
//  3. otherwise libonnxruntime.so.1 in the directory of the binary that contains this
//     code: the shared library libpatchcore.so when the package is linked into it (found
//     with dladdr on one of this package's own C functions), or the executable for a Go
//     program or test;
//  4. finally the plain soname libonnxruntime.so.1, resolved by the system loader
//     (LD_LIBRARY_PATH, the ld.so cache, the default directories).
//
// A path set explicitly (1 or 2) is the only place tried: when it cannot be loaded the
// error says so instead of silently using some other runtime. Steps 3 and 4 are tried in
// turn. When nothing loads, the error wraps ErrUnavailable and names every place tried
// with the loader's reason for each.
//
// The runtime must serve C API version 24 (ONNX Runtime 1.24 or newer); newer runtimes
// serve older API versions, so any later release works.
//
// # Errors
//
// Errors wrap exactly one of the sentinels of this package: ErrUnavailable (no usable
// runtime, or the runtime lacks a requested feature such as CUDA), ErrAlreadyLoaded,
// ErrArgument, ErrClosed, or ErrRuntime (ONNX Runtime reported a failure). libpatchcore's
// core package maps them onto its own error kinds.
package ort

/*
#cgo LDFLAGS: -ldl
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// The two entries of OrtApiBase (onnxruntime_c_api.h), which is frozen.
typedef struct {
	const void *(*GetApi)(uint32_t version);
	const char *(*GetVersionString)(void);
} pc_ort_api_base;

typedef void (*pc_fn)(void);
typedef void *pc_status;

// OrtApi is an append-only table of function pointers; these are the positions of the
// entries used here (counted in onnxruntime_c_api.h, stable across releases).
enum {
	PC_ORT_API_VERSION = 24,
	PC_IDX_GET_ERROR_MESSAGE = 2,
	PC_IDX_RELEASE_STATUS = 93,
	PC_IDX_GET_AVAILABLE_PROVIDERS = 125,
	PC_IDX_RELEASE_AVAILABLE_PROVIDERS = 126
};

// pc_self_path returns the file name of the binary (shared object or executable) that
// contains this function, or NULL.
static const char *pc_self_path(void) {
	Dl_info info;
	if (dladdr((void *)&pc_self_path, &info) == 0 || info.dli_fname == NULL) {
		return NULL;
	}
	return info.dli_fname;
}

typedef struct {
	void *handle;
	const pc_fn *api;
	const char *version;
	char path[4096];
	char err[1024];
} pc_runtime;

// pc_open loads an ONNX Runtime library and checks it serves the needed C API version.
static int pc_open(const char *name, pc_runtime *rt) {
	memset(rt, 0, sizeof(*rt));
	dlerror();
	void *h = dlopen(name, RTLD_NOW | RTLD_LOCAL);
	if (h == NULL) {
		const char *e = dlerror();
		snprintf(rt->err, sizeof(rt->err), "%s", e ? e : "dlopen failed");
		return 1;
	}
	void *sym = dlsym(h, "OrtGetApiBase");
	if (sym == NULL) {
		snprintf(rt->err, sizeof(rt->err), "no OrtGetApiBase symbol: not an ONNX Runtime library");
		dlclose(h);
		return 2;
	}
	const pc_ort_api_base *base = ((const pc_ort_api_base *(*)(void))sym)();
	if (base == NULL) {
		snprintf(rt->err, sizeof(rt->err), "OrtGetApiBase returned NULL");
		dlclose(h);
		return 3;
	}
	rt->version = base->GetVersionString();
	rt->api = (const pc_fn *)base->GetApi(PC_ORT_API_VERSION);
	if (rt->api == NULL) {
		snprintf(rt->err, sizeof(rt->err),
			"ONNX Runtime %s does not serve C API version %d (1.%d or newer is needed)",
			rt->version ? rt->version : "?", PC_ORT_API_VERSION, PC_ORT_API_VERSION);
		dlclose(h);
		return 4;
	}
	Dl_info info;
	if (dladdr(sym, &info) != 0 && info.dli_fname != NULL) {
		snprintf(rt->path, sizeof(rt->path), "%s", info.dli_fname);
	} else {
		snprintf(rt->path, sizeof(rt->path), "%s", name);
	}
	rt->handle = h;
	return 0;
}

// pc_providers lists the execution providers compiled into the runtime.
static int pc_providers(const pc_runtime *rt, char ***names, int *count, char *err, size_t errlen) {
	pc_status (*get)(char ***, int *) = (pc_status (*)(char ***, int *))rt->api[PC_IDX_GET_AVAILABLE_PROVIDERS];
	pc_status st = get(names, count);
	if (st != NULL) {
		const char *(*msg)(pc_status) = (const char *(*)(pc_status))rt->api[PC_IDX_GET_ERROR_MESSAGE];
		snprintf(err, errlen, "%s", msg(st));
		((void (*)(pc_status))rt->api[PC_IDX_RELEASE_STATUS])(st);
		return 1;
	}
	return 0;
}

static void pc_release_providers(const pc_runtime *rt, char **names, int count) {
	pc_status (*rel)(char **, int) = (pc_status (*)(char **, int))rt->api[PC_IDX_RELEASE_AVAILABLE_PROVIDERS];
	pc_status st = rel(names, count);
	if (st != NULL) {
		((void (*)(pc_status))rt->api[PC_IDX_RELEASE_STATUS])(st);
	}
}

static const char *pc_provider_at(char **names, int i) { return names[i]; }
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"unsafe"

	ortgo "github.com/yalue/onnxruntime_go"
)

// Error kinds of this package.
var (
	// ErrUnavailable: no ONNX Runtime library could be loaded, or the loaded runtime lacks a
	// requested feature (an execution provider).
	ErrUnavailable = errors.New("ONNX Runtime unavailable")
	// ErrAlreadyLoaded: SetLibraryPath named another library after the runtime was loaded.
	ErrAlreadyLoaded = errors.New("ONNX Runtime already loaded")
	// ErrArgument: a parameter (device string, thread count, tensor) is invalid.
	ErrArgument = errors.New("invalid argument")
	// ErrClosed: the session was closed.
	ErrClosed = errors.New("session closed")
	// ErrRuntime: ONNX Runtime reported a failure.
	ErrRuntime = errors.New("ONNX Runtime error")
)

// EnvLibrary is the environment variable that names the ONNX Runtime library file.
const EnvLibrary = "PATCHCORE_ORT_LIBRARY"

// Soname is the file name of the ONNX Runtime library looked up next to this binary and
// through the system loader.
const Soname = "libonnxruntime.so.1"

// Info describes the loaded runtime.
type Info struct {
	// Path is the file the library was loaded from (as the dynamic loader resolved it).
	Path string
	// Version is the runtime's version string, e.g. "1.30.0".
	Version string
	// Providers are the execution providers compiled into the runtime, e.g.
	// ["CPUExecutionProvider"].
	Providers []string
}

// HasProvider reports whether the runtime was built with the named execution provider.
func (i Info) HasProvider(name string) bool {
	for _, p := range i.Providers {
		if p == name {
			return true
		}
	}
	return false
}

var state struct {
	mu       sync.Mutex
	explicit string
	loaded   bool
	info     Info
}

// SetLibraryPath names the ONNX Runtime library file to load. It must be called before the
// runtime is first used; afterwards it succeeds only when the path names the library
// already loaded (same file), and otherwise returns an error wrapping ErrAlreadyLoaded.
func SetLibraryPath(path string) error {
	if path == "" {
		return fmt.Errorf("%w: empty ONNX Runtime library path", ErrArgument)
	}
	state.mu.Lock()
	defer state.mu.Unlock()
	if state.loaded {
		if sameFile(path, state.info.Path) {
			return nil
		}
		return fmt.Errorf("%w: the runtime was loaded from %s; cannot switch to %s", ErrAlreadyLoaded, state.info.Path, path)
	}
	state.explicit = path
	return nil
}

// sameFile reports whether two paths name the same file.
func sameFile(a, b string) bool {
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	if errA != nil || errB != nil {
		return a == b
	}
	return os.SameFile(fa, fb)
}

// candidate is one place to load the runtime from.
type candidate struct {
	path   string // passed to dlopen
	origin string // why this place is tried
}

// selfPath is the absolute path of the binary that contains this package, or "".
func selfPath() string {
	if p := C.pc_self_path(); p != nil {
		if s := C.GoString(p); filepath.IsAbs(s) {
			return s
		}
	}
	if exe, err := os.Executable(); err == nil {
		return exe
	}
	return ""
}

// candidates lists the places to try, in order (see the package documentation).
func candidates(explicit string) []candidate {
	if explicit != "" {
		return []candidate{{explicit, "set by SetLibraryPath"}}
	}
	if env := os.Getenv(EnvLibrary); env != "" {
		return []candidate{{env, "set by $" + EnvLibrary}}
	}
	var c []candidate
	if self := selfPath(); self != "" {
		c = append(c, candidate{filepath.Join(filepath.Dir(self), Soname), "next to " + self})
	}
	return append(c, candidate{Soname, "system loader search"})
}

// Init loads the runtime if that has not happened yet and describes it. It is safe to call
// from several goroutines; a failed attempt is retried by the next call.
func Init() (Info, error) {
	state.mu.Lock()
	defer state.mu.Unlock()
	if state.loaded {
		return state.info, nil
	}
	var tried []string
	for _, c := range candidates(state.explicit) {
		info, err := load(c.path)
		if err == nil {
			state.loaded, state.info = true, info
			return info, nil
		}
		tried = append(tried, fmt.Sprintf("%s (%s): %v", c.path, c.origin, err))
	}
	return Info{}, fmt.Errorf("%w: no ONNX Runtime library could be loaded; tried %s (set the path with SetLibraryPath or $%s)",
		ErrUnavailable, strings.Join(tried, "; "), EnvLibrary)
}

// load opens one library file and starts the runtime environment from it.
func load(path string) (Info, error) {
	cPath := C.CString(path)
	defer C.free(unsafe.Pointer(cPath))
	rt := (*C.pc_runtime)(C.calloc(1, C.sizeof_pc_runtime))
	defer C.free(unsafe.Pointer(rt))
	if C.pc_open(cPath, rt) != 0 {
		return Info{}, errors.New(C.GoString(&rt.err[0]))
	}
	info := Info{Path: C.GoString(&rt.path[0]), Version: C.GoString(rt.version)}
	var names **C.char
	var count C.int
	var errBuf [512]C.char
	if C.pc_providers(rt, &names, &count, &errBuf[0], C.size_t(len(errBuf))) != 0 {
		return Info{}, fmt.Errorf("listing execution providers: %s", C.GoString(&errBuf[0]))
	}
	for i := 0; i < int(count); i++ {
		info.Providers = append(info.Providers, C.GoString(C.pc_provider_at(names, C.int(i))))
	}
	C.pc_release_providers(rt, names, count)
	// onnxruntime_go opens the same file again (the loader returns the handle already
	// open) and creates the process-wide environment.
	ortgo.SetSharedLibraryPath(info.Path)
	if err := ortgo.InitializeEnvironment(ortgo.WithLogLevelFatal()); err != nil {
		return Info{}, fmt.Errorf("starting the runtime environment: %v", err)
	}
	return info, nil
}
