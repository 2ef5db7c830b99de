// Command capi is libpatchcore's C ABI: built with -buildmode=c-shared into
// libpatchcore.so, it exports exactly the functions declared in include/patchcore.h.
// Exports stay thin: validate, convert, call core, map the error to a status.
package main

func main() {}
