package ort

/*
#include <stdlib.h>
#if defined(__GLIBC__)
#include <malloc.h>
static void pc_release_free_heap(void) { malloc_trim(0); }
#else
static void pc_release_free_heap(void) {}
#endif
*/
import "C"

// ReleaseFreedMemory hands the free pages of the C heap back to the operating system.
// ONNX Runtime frees what it no longer needs, but glibc keeps freed memory mapped:
// creating a session for WideResNet50 up to layer3 (99 MB of weights) left 140 MB of
// resident memory behind that the process never used again (the model's parse and weight
// rewrites). The library calls it after creating and closing a session and after a fit's
// backbone pass (before the coreset, the fit's other memory peak); it is cheap (it walks
// glibc's free lists) and process-wide. With another C library its allocator returns
// memory on its own and the call does nothing.
func ReleaseFreedMemory() { C.pc_release_free_heap() }
