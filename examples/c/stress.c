/*
 * stress.c - reliability checks of libpatchcore from a C host (see docs/reliability.md).
 * Tiny features-only models (two feature layers, 16-dimensional embeddings) keep every
 * part fast; each part prints its figures and the program exits non-zero on any failure.
 *
 *   1. threads: 16 POSIX threads share one fitted model for CALLS predictions in total;
 *      every result must be bit-identical to the single-threaded one.
 *   2. races: 8 threads predict while the main thread refits the same model (same data),
 *      and finally frees it; every prediction is OK with the same result, or
 *      INVALID_STATE / INVALID_HANDLE, never another status.
 *   3. many models: 50 models, each fitted on its own data, alive at once and used from
 *      8 threads; every result equals that model's own.
 *   4. soak: CYCLES create / add / fit / predict / save-to-buffer / load / free cycles; the
 *      resident set size (VmRSS of /proc/self/status) after 1,000 cycles and after CYCLES
 *      cycles must differ by less than RSS_BOUND_MIB.
 *   5. fork: a child process forked (without exec) after the model was used must get
 *      INVALID_STATE from predict, create and load at once instead of hanging (an alarm
 *      kills it after 20 s); the parent keeps working.
 *
 *   stress                        CALLS and CYCLES from the environment:
 *   PATCHCORE_STRESS_CALLS=N      part 1 (default 10000)
 *   PATCHCORE_SOAK_CYCLES=N       part 4 (default 10000; below 2000 the RSS bound is not checked)
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, nanosleep, fork, alarm */
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "patchcore.h"

enum { C0 = 8, H0 = 4, W0 = 4, C1 = 8, H1 = 2, W1 = 2, MAP = 16 * 16 };
enum { THREADS = 16, RACERS = 8, MODELS = 50, MODEL_THREADS = 8 };
#define RSS_BOUND_MIB 8.0

static int report(const char* what, int32_t status) {
  char msg[1024];
  patchcore_last_error(msg, sizeof msg);
  fprintf(stderr, "stress: %s failed: %s: %s\n", what, patchcore_status_string(status), msg);
  return 1;
}

#define CHECK(call)                       \
  do {                                    \
    int32_t st_ = (call);                 \
    if (st_ != PATCHCORE_OK) {            \
      rc = report(#call, st_);            \
      goto done;                          \
    }                                     \
  } while (0)

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static long env_long(const char* name, long def) {
  const char* v = getenv(name);
  long n = v != NULL ? strtol(v, NULL, 10) : 0;
  return n > 0 ? n : def;
}

/* Feature maps of n images for both layers from a seed (xorshift32). */
typedef struct {
  float* l0;
  float* l1;
  int64_t shapes[8];
  const float* layers[2];
} maps_t;

static int maps_init(maps_t* m, uint32_t seed, int n) {
  uint32_t x = seed * 2654435761u + 1u;
  size_t n0 = (size_t)n * C0 * H0 * W0, n1 = (size_t)n * C1 * H1 * W1;
  int64_t shapes[8] = {n, C0, H0, W0, n, C1, H1, W1};
  m->l0 = malloc(n0 * sizeof(float));
  m->l1 = malloc(n1 * sizeof(float));
  if (m->l0 == NULL || m->l1 == NULL) return 1;
  for (size_t i = 0; i < n0 + n1; i++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    float v = (float)(x >> 8) / 16777216.0f;
    if (i < n0)
      m->l0[i] = v;
    else
      m->l1[i - n0] = v;
  }
  memcpy(m->shapes, shapes, sizeof shapes);
  m->layers[0] = m->l0;
  m->layers[1] = m->l1;
  return 0;
}

static void maps_free(maps_t* m) {
  free(m->l0);
  free(m->l1);
}

/* Creates a tiny model fitted on two images of maps from seed. */
static int32_t tiny_model(uint32_t seed, patchcore_model** out) {
  const char* names[2] = {"a", "b"};
  patchcore_config* config = NULL;
  maps_t train;
  int32_t st = PATCHCORE_ERR_OUT_OF_MEMORY;
  *out = NULL;
  if (maps_init(&train, seed, 2) != 0) goto out;
  if ((st = patchcore_config_create(&config)) != PATCHCORE_OK) goto out;
  if ((st = patchcore_config_set_layers(config, names, 2)) != PATCHCORE_OK) goto out;
  if ((st = patchcore_config_set_int(config, PATCHCORE_PARAM_RESIZE, 16)) != PATCHCORE_OK) goto out;
  if ((st = patchcore_config_set_int(config, PATCHCORE_PARAM_IMAGESIZE, 16)) != PATCHCORE_OK) goto out;
  if ((st = patchcore_config_set_int(config, PATCHCORE_PARAM_PRETRAIN_EMBED_DIM, 16)) != PATCHCORE_OK) goto out;
  if ((st = patchcore_config_set_int(config, PATCHCORE_PARAM_TARGET_EMBED_DIM, 16)) != PATCHCORE_OK) goto out;
  if ((st = patchcore_config_set_int(config, PATCHCORE_PARAM_NUM_THREADS, 1)) != PATCHCORE_OK) goto out;
  if ((st = patchcore_config_set_string(config, PATCHCORE_PARAM_SAMPLER, "identity")) != PATCHCORE_OK) goto out;
  if ((st = patchcore_model_create(config, out)) != PATCHCORE_OK) goto out;
  if ((st = patchcore_model_add_features(*out, train.layers, train.shapes, 2)) != PATCHCORE_OK) goto out;
  st = patchcore_model_fit(*out);
out:
  if (st != PATCHCORE_OK && *out != NULL) {
    patchcore_model_free(*out);
    *out = NULL;
  }
  patchcore_config_free(config);
  maps_free(&train);
  return st;
}

/* One image's score and anomaly map. */
typedef struct {
  float score;
  float map[MAP];
} result_t;

static int32_t predict(const patchcore_model* model, const maps_t* test, result_t* r) {
  return patchcore_model_predict_features(model, test->layers, test->shapes, 2, &r->score, r->map, MAP, NULL);
}

static int same(const result_t* a, const result_t* b) { return memcmp(a, b, sizeof *a) == 0; }

/* ------------------------------------------------------------------ 1. threads */

typedef struct {
  const patchcore_model* model;
  const maps_t* test;
  const result_t* want;
  long total;
  long next; /* shared counter, under lock */
  pthread_mutex_t lock;
  int failed;
} shared_t;

static void* thread_worker(void* arg) {
  shared_t* s = arg;
  result_t got;
  for (;;) {
    pthread_mutex_lock(&s->lock);
    int more = s->next < s->total && !s->failed;
    s->next++;
    pthread_mutex_unlock(&s->lock);
    if (!more) return NULL;
    int32_t st = predict(s->model, s->test, &got);
    if (st != PATCHCORE_OK || !same(&got, s->want)) {
      if (st != PATCHCORE_OK) report("patchcore_model_predict_features (thread)", st);
      else fprintf(stderr, "stress: a concurrent result differs from the single-threaded one\n");
      pthread_mutex_lock(&s->lock);
      s->failed = 1;
      pthread_mutex_unlock(&s->lock);
      return NULL;
    }
  }
}

static int part_threads(long calls) {
  int rc = 0;
  patchcore_model* model = NULL;
  maps_t test = {0};
  result_t want;
  shared_t s;
  pthread_t th[THREADS];
  int started = 0;
  double t0 = now();
  memset(&s, 0, sizeof s);
  pthread_mutex_init(&s.lock, NULL);
  if (maps_init(&test, 99, 1) != 0) {
    rc = 1;
    goto done;
  }
  CHECK(tiny_model(1, &model));
  CHECK(predict(model, &test, &want));
  s.model = model;
  s.test = &test;
  s.want = &want;
  s.total = calls;
  t0 = now();
  for (; started < THREADS; started++)
    if (pthread_create(&th[started], NULL, thread_worker, &s) != 0) {
      rc = 1;
      break;
    }
  for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
  rc |= s.failed;
  if (rc == 0)
    printf("threads: %d threads x %ld predictions in total, identical to the single-threaded result (%.2f s)\n", THREADS,
           calls, now() - t0);
done:
  patchcore_model_free(model);
  maps_free(&test);
  pthread_mutex_destroy(&s.lock);
  return rc;
}

/* ------------------------------------------------------------------ 2. races */

typedef struct {
  patchcore_model* model;
  const maps_t* test;
  const result_t* want;
  volatile int stop;
  long ok, invalid_handle, invalid_state;
  int failed;
} racer_t;

static void* race_worker(void* arg) {
  racer_t* r = arg;
  result_t got;
  while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
    int32_t st = predict(r->model, r->test, &got);
    if (st == PATCHCORE_OK && same(&got, r->want)) {
      r->ok++;
    } else if (st == PATCHCORE_ERR_INVALID_HANDLE) {
      r->invalid_handle++;
    } else if (st == PATCHCORE_ERR_INVALID_STATE) {
      r->invalid_state++;
    } else {
      if (st != PATCHCORE_OK) report("patchcore_model_predict_features (racing)", st);
      else fprintf(stderr, "stress: a prediction racing fit differs from the expected result\n");
      r->failed = 1;
      return NULL;
    }
  }
  return NULL;
}

static int part_races(void) {
  int rc = 0;
  patchcore_model* model = NULL;
  maps_t train = {0}, test = {0};
  result_t want;
  racer_t r[RACERS];
  pthread_t th[RACERS];
  int started = 0;
  if (maps_init(&train, 2, 2) != 0 || maps_init(&test, 7, 1) != 0) {
    rc = 1;
    goto done;
  }
  CHECK(tiny_model(2, &model));
  CHECK(predict(model, &test, &want));
  for (; started < RACERS; started++) {
    memset(&r[started], 0, sizeof r[started]);
    r[started].model = model;
    r[started].test = &test;
    r[started].want = &want;
    if (pthread_create(&th[started], NULL, race_worker, &r[started]) != 0) {
      rc = 1;
      break;
    }
  }
  for (int i = 0; i < 50 && rc == 0; i++) { /* refit with the same data: the results stay the same */
    CHECK(patchcore_model_add_features(model, train.layers, train.shapes, 2));
    CHECK(patchcore_model_fit(model));
  }
  {
    int32_t st = patchcore_model_free(model); /* waits for the calls in flight; later ones see INVALID_HANDLE */
    model = NULL;
    if (st != PATCHCORE_OK) {
      rc = report("patchcore_model_free", st);
      goto done;
    }
  }
  {
    struct timespec pause = {0, 5 * 1000 * 1000};
    nanosleep(&pause, NULL);
  }
done:
  for (int i = 0; i < started; i++) __atomic_store_n(&r[i].stop, 1, __ATOMIC_RELEASE);
  long ok = 0, ih = 0, is = 0;
  for (int i = 0; i < started; i++) {
    pthread_join(th[i], NULL);
    rc |= r[i].failed;
    ok += r[i].ok;
    ih += r[i].invalid_handle;
    is += r[i].invalid_state;
  }
  if (rc == 0)
    printf("races: predictions racing 50 refits and a free: %ld OK (all identical), %ld INVALID_HANDLE, %ld INVALID_STATE\n",
           ok, ih, is);
  patchcore_model_free(model);
  maps_free(&train);
  maps_free(&test);
  return rc;
}

/* ------------------------------------------------------------------ 3. many models */

typedef struct {
  patchcore_model** models;
  const maps_t* test;
  const result_t* want;
  int id, failed;
} many_t;

static void* many_worker(void* arg) {
  many_t* w = arg;
  result_t got;
  for (int round = 0; round < 4; round++)
    for (int j = 0; j < MODELS; j++) {
      int i = (j * (2 * w->id + 1) + round) % MODELS;
      int32_t st = predict(w->models[i], w->test, &got);
      if (st != PATCHCORE_OK || !same(&got, &w->want[i])) {
        if (st != PATCHCORE_OK) report("patchcore_model_predict_features (many)", st);
        else fprintf(stderr, "stress: model %d gave another model's result\n", i);
        w->failed = 1;
        return NULL;
      }
    }
  return NULL;
}

static int part_many(void) {
  int rc = 0;
  patchcore_model* models[MODELS] = {0};
  result_t* want = malloc(MODELS * sizeof *want);
  maps_t test = {0};
  many_t w[MODEL_THREADS];
  pthread_t th[MODEL_THREADS];
  int started = 0;
  if (want == NULL || maps_init(&test, 1234, 1) != 0) {
    rc = 1;
    goto done;
  }
  for (int i = 0; i < MODELS; i++) {
    CHECK(tiny_model(100 + (uint32_t)i, &models[i]));
    CHECK(predict(models[i], &test, &want[i]));
  }
  for (; started < MODEL_THREADS; started++) {
    w[started] = (many_t){models, &test, want, started, 0};
    if (pthread_create(&th[started], NULL, many_worker, &w[started]) != 0) {
      rc = 1;
      break;
    }
  }
  for (int i = 0; i < started; i++) {
    pthread_join(th[i], NULL);
    rc |= w[i].failed;
  }
  if (rc == 0) printf("many models: %d models alive at once, %d threads x %d predictions each, every result its model's own\n",
                      MODELS, MODEL_THREADS, 4 * MODELS);
done:
  for (int i = 0; i < MODELS; i++) {
    int32_t st = patchcore_model_free(models[i]);
    if (st != PATCHCORE_OK) rc = report("patchcore_model_free", st);
  }
  free(want);
  maps_free(&test);
  return rc;
}

/* ------------------------------------------------------------------ 4. soak */

/* VmRSS of this process in KiB, 0 if unknown. */
static long rss_kib(void) {
  FILE* f = fopen("/proc/self/status", "r");
  char line[256];
  long kib = 0;
  if (f == NULL) return 0;
  while (fgets(line, sizeof line, f) != NULL)
    if (strncmp(line, "VmRSS:", 6) == 0) {
      kib = strtol(line + 6, NULL, 10);
      break;
    }
  fclose(f);
  return kib;
}

/* One soak cycle: a new model is fitted, scores, is serialised and loaded back, the copy
 * scores, and both are freed. */
static int soak_cycle(uint32_t seed, const maps_t* test) {
  int rc = 0;
  patchcore_model *model = NULL, *copy = NULL;
  unsigned char* buf = NULL;
  size_t need = 0;
  result_t got;
  CHECK(tiny_model(seed, &model));
  CHECK(predict(model, test, &got));
  if (patchcore_model_save_to_buffer(model, NULL, 0, &need) != PATCHCORE_ERR_BUFFER_TOO_SMALL || (buf = malloc(need)) == NULL) {
    fprintf(stderr, "stress: size query of patchcore_model_save_to_buffer failed\n");
    rc = 1;
    goto done;
  }
  CHECK(patchcore_model_save_to_buffer(model, buf, need, NULL));
  CHECK(patchcore_model_load_from_buffer(buf, need, NULL, &copy));
  CHECK(predict(copy, test, &got));
done:
  free(buf);
  patchcore_model_free(copy);
  patchcore_model_free(model);
  return rc;
}

static int part_soak(long cycles) {
  int rc = 0;
  maps_t test = {0};
  long rss_1000 = 0, rss_end;
  double t0 = now(), growth;
  if (maps_init(&test, 5, 1) != 0) return 1;
  for (long i = 1; i <= cycles && rc == 0; i++) {
    rc = soak_cycle((uint32_t)i, &test);
    if (i == 1000) rss_1000 = rss_kib();
  }
  rss_end = rss_kib();
  maps_free(&test);
  if (rc != 0) return rc;
  if (cycles < 2000 || rss_1000 == 0) {
    printf("soak: %ld create/fit/predict/save/load/free cycles (%.2f s), RSS %.1f MiB (too few cycles to check growth)\n",
           cycles, now() - t0, (double)rss_end / 1024.0);
    return 0;
  }
  growth = (double)(rss_end - rss_1000) / 1024.0;
  printf("soak: %ld create/fit/predict/save/load/free cycles (%.2f s): RSS %.1f MiB after 1000, %.1f MiB after %ld: "
         "growth %.2f MiB (bound %.0f MiB)\n",
         cycles, now() - t0, (double)rss_1000 / 1024.0, (double)rss_end / 1024.0, cycles, growth, RSS_BOUND_MIB);
  if (growth >= RSS_BOUND_MIB) {
    fprintf(stderr, "stress: RSS grew by %.2f MiB between cycle 1000 and cycle %ld\n", growth, cycles);
    return 1;
  }
  return 0;
}

/* ------------------------------------------------------------------ 5. fork */

/* In the child: every call must fail with INVALID_STATE. Returns the child's exit code. */
static int forked_child(const patchcore_model* model, const maps_t* test) {
  result_t r;
  patchcore_config* config = NULL;
  patchcore_model* loaded = NULL;
  char byte = 0;
  alarm(20); /* a hang kills the child with SIGALRM, which the parent reports */
  if (predict(model, test, &r) != PATCHCORE_ERR_INVALID_STATE) return 2;
  if (patchcore_config_create(&config) != PATCHCORE_ERR_INVALID_STATE) return 3;
  if (patchcore_model_load_from_buffer(&byte, 1, NULL, &loaded) != PATCHCORE_ERR_INVALID_STATE) return 4;
  return 0;
}

static int part_fork(void) {
  int rc = 0, status = 0;
  patchcore_model* model = NULL;
  maps_t test;
  result_t before, after;
  pid_t pid;
  if (maps_init(&test, 99, 1) != 0) return report("maps_init", PATCHCORE_ERR_OUT_OF_MEMORY);
  CHECK(tiny_model(7, &model));
  CHECK(predict(model, &test, &before));
  fflush(NULL);
  pid = fork();
  if (pid < 0) {
    perror("stress: fork");
    rc = 1;
    goto done;
  }
  if (pid == 0) _exit(forked_child(model, &test));
  if (waitpid(pid, &status, 0) != pid) {
    perror("stress: waitpid");
    rc = 1;
    goto done;
  }
  if (WIFSIGNALED(status)) {
    fprintf(stderr, "stress: fork: the child was killed by signal %d (a hang ends with SIGALRM)\n", WTERMSIG(status));
    rc = 1;
  } else if (WEXITSTATUS(status) != 0) {
    fprintf(stderr, "stress: fork: check %d in the child did not get INVALID_STATE\n", WEXITSTATUS(status));
    rc = 1;
  }
  CHECK(predict(model, &test, &after));
  if (!same(&before, &after)) {
    fprintf(stderr, "stress: fork: the parent's result changed\n");
    rc = 1;
  }
  if (rc == 0) printf("fork: the child got INVALID_STATE at once; the parent is unaffected\n");
done:
  patchcore_model_free(model);
  maps_free(&test);
  return rc;
}

int main(void) {
  long calls = env_long("PATCHCORE_STRESS_CALLS", 10000);
  long cycles = env_long("PATCHCORE_SOAK_CYCLES", 10000);
  int rc = part_threads(calls);
  rc |= part_races();
  rc |= part_many();
  rc |= part_soak(cycles);
  rc |= part_fork();
  if (rc == 0) printf("stress: all parts passed\n");
  return rc;
}
