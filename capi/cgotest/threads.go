package cgotest

/*
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include "patchcore.h"

// Each thread makes failing calls whose messages name a value unique to the thread
// (k = -(id + 1)) and checks after every call that its own message is the one it reads.
typedef struct {
	int id, iters, bad;
	char got[256];
} ct_errthread;

static void* ct_err_worker(void* arg) {
	ct_errthread* t = (ct_errthread*)arg;
	char want[64], buf[256];
	snprintf(want, sizeof want, "k = %d ", -(t->id + 1));
	for (int i = 0; i < t->iters; i++) {
		patchcore_scorer* s = NULL;
		if (patchcore_scorer_create(-(t->id + 1), PATCHCORE_NN_EXACT, 0, 1, &s) != PATCHCORE_ERR_INVALID_ARGUMENT || s != NULL) {
			t->bad = 1;
			snprintf(t->got, sizeof t->got, "iteration %d: create did not fail as expected", i);
			return NULL;
		}
		patchcore_last_error(buf, sizeof buf);
		if (strstr(buf, want) == NULL) {
			t->bad = 1;
			snprintf(t->got, sizeof t->got, "iteration %d: want \"%s\" in \"%s\"", i, want, buf);
			return NULL;
		}
	}
	return NULL;
}

static int ct_thread_errors(int nthreads, int iters, char* report, size_t cap) {
	pthread_t th[64];
	ct_errthread ts[64];
	if (nthreads > 64) nthreads = 64;
	for (int i = 0; i < nthreads; i++) {
		memset(&ts[i], 0, sizeof ts[i]);
		ts[i].id = i;
		ts[i].iters = iters;
		if (pthread_create(&th[i], NULL, ct_err_worker, &ts[i]) != 0) {
			snprintf(report, cap, "pthread_create failed");
			return 1;
		}
	}
	int bad = 0;
	for (int i = 0; i < nthreads; i++) {
		pthread_join(th[i], NULL);
		if (ts[i].bad && !bad) {
			snprintf(report, cap, "thread %d: %s", i, ts[i].got);
			bad = 1;
		}
	}
	return bad;
}
*/
import "C"

import "unsafe"

// ThreadErrors runs nThreads (at most 64) POSIX threads, created in C and unknown to Go,
// each making iters failing calls and checking that patchcore_last_error returns its own
// message every time. It returns "" on success, else the first mismatch.
func ThreadErrors(nThreads, iters int) string {
	buf := make([]byte, 512)
	if C.ct_thread_errors(C.int(nThreads), C.int(iters), (*C.char)(unsafe.Pointer(&buf[0])), C.size_t(len(buf))) == 0 {
		return ""
	}
	return C.GoString((*C.char)(unsafe.Pointer(&buf[0])))
}
