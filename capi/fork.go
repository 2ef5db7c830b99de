package main

/*
#include <pthread.h>

// Set in a child process by the pthread_atfork handler, never cleared: the child has only
// the thread that called fork(), and the Go runtime's threads stayed in the parent.
static volatile int pc_forked_child;

static void pc_mark_forked_child(void) { pc_forked_child = 1; }
static int pc_watch_fork(void) { return pthread_atfork(NULL, NULL, pc_mark_forked_child); }
static int pc_in_forked_child(void) { return pc_forked_child; }
*/
import "C"

import "fmt"

// The library cannot run in a child process created by fork() without exec: the runtime's
// threads (scheduler, garbage collector, workers) do not exist there and a call that needs
// them hangs. A fork handler marks the child, and every call that could block fails fast
// instead with INVALID_STATE.
func init() {
	if rc := C.pc_watch_fork(); rc != 0 {
		panic(fmt.Sprintf("libpatchcore: pthread_atfork failed (%d)", rc))
	}
}

// errIfForkedChild returns an INVALID_STATE error in a child process after fork().
func errIfForkedChild() error {
	if C.pc_in_forked_child() != 0 {
		return errorf(statusInvalidState, "libpatchcore cannot be used in a child process after fork() (its runtime threads stayed in the parent); use it in the parent, or start the child with exec (Python: the \"spawn\" start method)")
	}
	return nil
}
