/*
 * multithread.c - 8 POSIX threads predict concurrently on one fitted model (predict is
 * allowed to run concurrently; see "Threading" in patchcore.h). Each thread scores the
 * same feature maps repeatedly and checks that its scores and anomaly maps are
 * bit-identical to a single-threaded run. Every output buffer is filled with NaN before
 * each call, so an element that predict failed to write shows up as a difference (or, in
 * the single-threaded reference, as a non-finite value). A features-only model keeps the
 * example independent of any backbone file.
 *
 *   multithread [ITERATIONS]     (default 10 per thread; exit status 0 on success)
 */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "patchcore.h"

enum { THREADS = 8, N = 2, C0 = 32, H0 = 12, W0 = 12, C1 = 48, H1 = 6, W1 = 6, TRAIN = 4 };

static int report(const char* what, int32_t status) {
  char msg[1024];
  patchcore_last_error(msg, sizeof msg);
  fprintf(stderr, "multithread: %s failed: %s: %s\n", what, patchcore_status_string(status), msg);
  return 1;
}

#define CHECK(call)                          \
  do {                                       \
    int32_t st_ = (call);                    \
    if (st_ != PATCHCORE_OK) {               \
      rc = report(#call, st_);               \
      goto done;                             \
    }                                        \
  } while (0)

static uint32_t rng_state = 88172645u;
static float next_float(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 17;
  rng_state ^= rng_state << 5;
  return (float)(rng_state >> 8) / 16777216.0f;
}

static void fill_nan(float* x, size_t n) {
  for (size_t i = 0; i < n; i++) x[i] = NAN;
}

static int all_finite(const float* x, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!isfinite(x[i])) return 0;
  return 1;
}

static float* random_floats(size_t n) {
  float* x = malloc(n * sizeof *x);
  if (x != NULL)
    for (size_t i = 0; i < n; i++) x[i] = next_float();
  return x;
}

/* What every thread shares: the model, its input and the single-threaded reference. */
typedef struct {
  const patchcore_model* model;
  const float* layers[2];
  int64_t shapes[8];
  size_t map_size;
  const float* want_scores;
  const float* want_maps;
  int iterations;
} shared_state;

typedef struct {
  const shared_state* shared;
  int id;
  int failed;
} worker;

static void* run_worker(void* arg) {
  worker* w = arg;
  const shared_state* s = w->shared;
  size_t n_maps = N * s->map_size;
  float scores[N];
  float* maps = malloc(n_maps * sizeof *maps);
  if (maps == NULL) {
    w->failed = 1;
    return NULL;
  }
  for (int it = 0; it < s->iterations && !w->failed; it++) {
    fill_nan(scores, N);
    fill_nan(maps, n_maps);
    int32_t st = patchcore_model_predict_features(s->model, s->layers, s->shapes, 2, scores, maps, n_maps, NULL);
    if (st != PATCHCORE_OK) {
      report("patchcore_model_predict_features (worker)", st);
      w->failed = 1;
    } else if (memcmp(scores, s->want_scores, sizeof scores) != 0 || memcmp(maps, s->want_maps, n_maps * sizeof *maps) != 0) {
      fprintf(stderr, "multithread: thread %d, iteration %d: results differ from the single-threaded run\n", w->id, it);
      w->failed = 1;
    }
  }
  free(maps);
  return NULL;
}

int main(int argc, char** argv) {
  int rc = 0;
  int32_t st;
  int iterations = argc > 1 ? atoi(argv[1]) : 10;
  patchcore_config* config = NULL;
  patchcore_model* model = NULL;
  const char* names[2] = {"a", "b"};
  float* train0 = random_floats((size_t)TRAIN * C0 * H0 * W0);
  float* train1 = random_floats((size_t)TRAIN * C1 * H1 * W1);
  float* test0 = random_floats((size_t)N * C0 * H0 * W0);
  float* test1 = random_floats((size_t)N * C1 * H1 * W1);
  float* want_maps = NULL;
  float want_scores[N];
  shared_state shared;
  worker workers[THREADS];
  pthread_t threads[THREADS];
  int started = 0;
  if (!train0 || !train1 || !test0 || !test1 || iterations < 1) {
    fprintf(stderr, "multithread: out of memory or bad iteration count\n");
    rc = 1;
    goto done;
  }

  CHECK(patchcore_config_create(&config));
  CHECK(patchcore_config_set_layers(config, names, 2));
  CHECK(patchcore_config_set_int(config, PATCHCORE_PARAM_PRETRAIN_EMBED_DIM, 64));
  CHECK(patchcore_config_set_int(config, PATCHCORE_PARAM_TARGET_EMBED_DIM, 32));
  CHECK(patchcore_config_set_int(config, PATCHCORE_PARAM_RESIZE, 96));
  CHECK(patchcore_config_set_int(config, PATCHCORE_PARAM_IMAGESIZE, 96));
  CHECK(patchcore_config_set_float(config, PATCHCORE_PARAM_PERCENTAGE, 0.5));
  CHECK(patchcore_model_create(config, &model));
  {
    const float* train[2] = {train0, train1};
    int64_t shapes[8] = {TRAIN, C0, H0, W0, TRAIN, C1, H1, W1};
    CHECK(patchcore_model_add_features(model, train, shapes, 2));
  }
  CHECK(patchcore_model_fit(model));

  memset(&shared, 0, sizeof shared);
  shared.model = model;
  shared.layers[0] = test0;
  shared.layers[1] = test1;
  {
    int64_t shapes[8] = {N, C0, H0, W0, N, C1, H1, W1};
    memcpy(shared.shapes, shapes, sizeof shapes);
  }
  CHECK(patchcore_model_map_size(model, &shared.map_size));
  want_maps = malloc(N * shared.map_size * sizeof *want_maps);
  if (want_maps == NULL) {
    rc = 1;
    goto done;
  }
  fill_nan(want_scores, N);
  fill_nan(want_maps, N * shared.map_size);
  CHECK(patchcore_model_predict_features(model, shared.layers, shared.shapes, 2, want_scores, want_maps, N * shared.map_size, NULL));
  if (!all_finite(want_scores, N) || !all_finite(want_maps, N * shared.map_size)) {
    fprintf(stderr, "multithread: the single-threaded prediction left outputs unwritten or non-finite\n");
    rc = 1;
    goto done;
  }
  shared.want_scores = want_scores;
  shared.want_maps = want_maps;
  shared.iterations = iterations;

  for (; started < THREADS; started++) {
    workers[started].shared = &shared;
    workers[started].id = started;
    workers[started].failed = 0;
    if (pthread_create(&threads[started], NULL, run_worker, &workers[started]) != 0) {
      fprintf(stderr, "multithread: pthread_create failed\n");
      rc = 1;
      break;
    }
  }
  for (int i = 0; i < started; i++) {
    pthread_join(threads[i], NULL);
    rc |= workers[i].failed;
  }
  if (rc == 0)
    printf("%d threads x %d predictions: identical to the single-threaded run (scores %.4f, %.4f)\n", THREADS,
           iterations, want_scores[0], want_scores[1]);

done:
  free(want_maps);
  free(test1);
  free(test0);
  free(train1);
  free(train0);
  if ((st = patchcore_model_free(model)) != PATCHCORE_OK) rc = report("patchcore_model_free", st);
  if ((st = patchcore_config_free(config)) != PATCHCORE_OK) rc = report("patchcore_config_free", st);
  return rc;
}
