// Command capi is libpatchcore's C ABI: built with -buildmode=c-shared into
// libpatchcore.so, it exports exactly the functions declared in include/patchcore.h.
//
// exports.go holds only the //export functions; each is thin: guard, validate, acquire the
// handle, call core, map the error. handles.go is the id registry behind the opaque
// handles, guard.go the per-call guard (panic recovery, poisoning, lock release),
// errors.go the status codes and the per-thread last error, convert.go the views of C
// memory and the argument checks, config.go the patchcore_config settings, model.go the
// model helpers. capi.h (private) gives the const aliases that let the C compiler check
// every export against the public header, and libpatchcore.map the linker version script
// that keeps every other symbol local. The tests drive the C API through capi/cgotest.
package main

func main() {}
