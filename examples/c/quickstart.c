/*
 * quickstart.c - the whole libpatchcore lifecycle from C: configure, fit on a folder of
 * good images, score test images, write a heat map, free everything. Every status is
 * checked; on failure the library's message for this thread is printed.
 *
 *   quickstart [-l LAYER,LAYER...] [-m R,G,B] [-s R,G,B] [-S SAMPLER] [-o HEATMAP.pgm]
 *              BACKBONE.onnx TRAIN_DIR TEST_IMAGE...
 *
 * TRAIN_DIR holds the good training images (*.png, *.jpg, *.jpeg). -m/-s set the
 * normalisation the backbone expects (default ImageNet), -S the coreset sampler (default
 * approx_greedy_coreset), -o writes the first test image's anomaly map as an 8-bit PGM
 * scaled to its own minimum and maximum.
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "patchcore.h"

/* Prints the failing call, its status and the thread's last error message. */
static int report(const char* what, int32_t status) {
  char msg[1024];
  patchcore_last_error(msg, sizeof msg);
  fprintf(stderr, "quickstart: %s failed: %s: %s\n", what, patchcore_status_string(status), msg);
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

/* Splits a comma-separated list in place into at most max items. */
static size_t split(char* s, char** items, size_t max) {
  size_t n = 0;
  for (char* tok = strtok(s, ","); tok != NULL && n < max; tok = strtok(NULL, ",")) items[n++] = tok;
  return n;
}

static int parse_floats3(char* s, float out[3]) {
  char* items[3];
  if (split(s, items, 3) != 3) return 0;
  for (int i = 0; i < 3; i++) out[i] = strtof(items[i], NULL);
  return 1;
}

static int has_image_suffix(const char* name) {
  const char* dot = strrchr(name, '.');
  return dot != NULL && (strcmp(dot, ".png") == 0 || strcmp(dot, ".jpg") == 0 || strcmp(dot, ".jpeg") == 0);
}

static int compare_paths(const void* a, const void* b) {
  return strcmp(*(char* const*)a, *(char* const*)b);
}

/* Lists the images of dir, sorted; *out_count receives their number. */
static char** list_images(const char* dir, size_t* out_count) {
  DIR* d = opendir(dir);
  if (d == NULL) return NULL;
  size_t n = 0, cap = 16;
  char** paths = malloc(cap * sizeof *paths);
  for (struct dirent* e = readdir(d); e != NULL && paths != NULL; e = readdir(d)) {
    if (!has_image_suffix(e->d_name)) continue;
    if (n == cap) {
      char** grown = realloc(paths, 2 * cap * sizeof *paths);
      if (grown == NULL) break;
      paths = grown;
      cap *= 2;
    }
    size_t len = strlen(dir) + strlen(e->d_name) + 2;
    paths[n] = malloc(len);
    if (paths[n] == NULL) break;
    snprintf(paths[n++], len, "%s/%s", dir, e->d_name);
  }
  closedir(d);
  if (paths != NULL) qsort(paths, n, sizeof *paths, compare_paths);
  *out_count = n;
  return paths;
}

/* Writes a side x side map as an 8-bit PGM, scaled to its minimum and maximum. */
static int write_pgm(const char* path, const float* map, size_t side) {
  float lo = map[0], hi = map[0];
  for (size_t i = 1; i < side * side; i++) {
    if (map[i] < lo) lo = map[i];
    if (map[i] > hi) hi = map[i];
  }
  FILE* f = fopen(path, "wb");
  if (f == NULL) return 0;
  fprintf(f, "P5\n%zu %zu\n255\n", side, side);
  for (size_t i = 0; i < side * side; i++) {
    float v = hi > lo ? (map[i] - lo) / (hi - lo) : 0.0f;
    fputc((int)(v * 255.0f + 0.5f), f);
  }
  return fclose(f) == 0;
}

int main(int argc, char** argv) {
  char* layers[16] = {"layer2", "layer3"};
  size_t n_layers = 2;
  float mean[3], std[3];
  int have_mean = 0, have_std = 0;
  const char* sampler = NULL;
  const char* heatmap = NULL;
  int opt, bad_usage = 0;
  while ((opt = getopt(argc, argv, "l:m:s:S:o:")) != -1) {
    switch (opt) {
      case 'l': n_layers = split(optarg, layers, 16); break;
      case 'm': bad_usage |= !(have_mean = parse_floats3(optarg, mean)); break;
      case 's': bad_usage |= !(have_std = parse_floats3(optarg, std)); break;
      case 'S': sampler = optarg; break;
      case 'o': heatmap = optarg; break;
      default: bad_usage = 1;
    }
  }
  if (bad_usage || argc - optind < 3) {
    fprintf(stderr, "usage: %s [-l LAYERS] [-m MEAN] [-s STD] [-S SAMPLER] [-o HEATMAP.pgm] BACKBONE.onnx TRAIN_DIR TEST_IMAGE...\n", argv[0]);
    return 2;
  }
  const char* backbone = argv[optind];
  const char* train_dir = argv[optind + 1];
  const char* const* tests = (const char* const*)&argv[optind + 2];
  size_t n_tests = (size_t)(argc - optind - 2);

  /* A library of another major version has another ABI. */
  if (patchcore_version_number() / 10000 != PATCHCORE_VERSION_MAJOR) {
    fprintf(stderr, "quickstart: built for libpatchcore %d.x, loaded %s\n", PATCHCORE_VERSION_MAJOR, patchcore_version_string());
    return 1;
  }
  printf("libpatchcore %s\n", patchcore_version_string());

  int rc = 0;
  patchcore_config* config = NULL;
  patchcore_model* model = NULL;
  char** train = NULL;
  size_t n_train = 0;
  float* scores = NULL;
  float* maps = NULL;
  int64_t bank = 0, grid_h = 0, grid_w = 0;
  size_t map_size = 0, needed = 0, worst = 0;
  int32_t st;

  CHECK(patchcore_config_create(&config));
  CHECK(patchcore_config_set_string(config, PATCHCORE_PARAM_BACKBONE_PATH, backbone));
  CHECK(patchcore_config_set_layers(config, (const char* const*)layers, n_layers));
  if (have_mean) CHECK(patchcore_config_set_floats(config, PATCHCORE_PARAM_MEAN, mean, 3));
  if (have_std) CHECK(patchcore_config_set_floats(config, PATCHCORE_PARAM_STD, std, 3));
  if (sampler != NULL) CHECK(patchcore_config_set_string(config, PATCHCORE_PARAM_SAMPLER, sampler));
  CHECK(patchcore_model_create(config, &model));

  train = list_images(train_dir, &n_train);
  if (train == NULL || n_train == 0) {
    fprintf(stderr, "quickstart: no images in %s\n", train_dir);
    rc = 1;
    goto done;
  }
  CHECK(patchcore_model_add_files(model, (const char* const*)train, n_train));
  CHECK(patchcore_model_fit(model));
  CHECK(patchcore_model_get_int(model, PATCHCORE_PARAM_BANK_ROWS, &bank));
  CHECK(patchcore_model_get_int(model, PATCHCORE_PARAM_GRID_HEIGHT, &grid_h));
  CHECK(patchcore_model_get_int(model, PATCHCORE_PARAM_GRID_WIDTH, &grid_w));
  printf("fitted on %zu images: memory bank of %lld patches, %lldx%lld per image\n", n_train, (long long)bank,
         (long long)grid_h, (long long)grid_w);

  /* Size the outputs with a size query, then score. */
  CHECK(patchcore_model_map_size(model, &map_size));
  scores = malloc(n_tests * sizeof *scores);
  maps = malloc(n_tests * map_size * sizeof *maps);
  if (scores == NULL || maps == NULL) {
    fprintf(stderr, "quickstart: out of memory\n");
    rc = 1;
    goto done;
  }
  CHECK(patchcore_model_predict_files(model, tests, n_tests, scores, maps, n_tests * map_size, &needed));
  for (size_t i = 0; i < n_tests; i++) {
    printf("score %-60s %10.4f\n", tests[i], scores[i]);
    if (scores[i] > scores[worst]) worst = i;
  }
  printf("most anomalous: %s\n", tests[worst]);

  if (heatmap != NULL) {
    size_t side = 1;
    while (side * side < map_size) side++;
    if (!write_pgm(heatmap, maps, side)) {
      fprintf(stderr, "quickstart: cannot write %s\n", heatmap);
      rc = 1;
      goto done;
    }
    printf("heat map of %s written to %s\n", tests[0], heatmap);
  }

done:
  free(maps);
  free(scores);
  for (size_t i = 0; i < n_train; i++) free(train[i]);
  free(train);
  /* Freeing NULL (a create that failed) is a no-op. */
  if ((st = patchcore_model_free(model)) != PATCHCORE_OK) rc = report("patchcore_model_free", st);
  if ((st = patchcore_config_free(config)) != PATCHCORE_OK) rc = report("patchcore_config_free", st);
  return rc;
}
