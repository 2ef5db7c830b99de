/* capi.h - private to capi/: included by the cgo preambles, never installed.
 *
 * cgo writes every //export prototype from the Go parameter types. A Go *C.float becomes
 * "float*", which conflicts with the public "const float*" of patchcore.h; the const
 * aliases below make cgo write exactly the public prototype, so including patchcore.h in
 * the preamble lets the C compiler check every export against the header. */
#ifndef PATCHCORE_CAPI_H
#define PATCHCORE_CAPI_H

#include <stdint.h>
#include "patchcore.h"

typedef const char pc_cchar;
typedef const uint8_t pc_cu8;
typedef const int32_t pc_ci32;
typedef const int64_t pc_ci64;
typedef const float pc_cfloat;
typedef const void pc_cvoid;
typedef const char* const pc_cstr;     /* element of const char* const* */
typedef const float* const pc_cfloatp; /* element of const float* const* */
typedef float* const pc_floatpc;       /* element of float* const* */
typedef const size_t pc_csize;
typedef const patchcore_config pc_cconfig;
typedef const patchcore_model pc_cmodel;
typedef const patchcore_aggregator pc_caggregator;
typedef const patchcore_scorer pc_cscorer;
typedef const patchcore_segmentor pc_csegmentor;

/* Handles are registry ids dressed as pointers. The id -> handle casts live here so that Go
 * code never turns an integer into an unsafe.Pointer; the handle -> id direction is a
 * plain uintptr conversion in Go (capi/convert.go handleID), which keeps a caller's made-up
 * handle away from cgo's pointer checks. */
static inline patchcore_config* pc_config_handle(uintptr_t id) { return (patchcore_config*)id; }
static inline patchcore_model* pc_model_handle(uintptr_t id) { return (patchcore_model*)id; }
static inline patchcore_aggregator* pc_aggregator_handle(uintptr_t id) { return (patchcore_aggregator*)id; }
static inline patchcore_scorer* pc_scorer_handle(uintptr_t id) { return (patchcore_scorer*)id; }
static inline patchcore_segmentor* pc_segmentor_handle(uintptr_t id) { return (patchcore_segmentor*)id; }

#endif /* PATCHCORE_CAPI_H */
