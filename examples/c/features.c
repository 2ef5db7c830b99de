/*
 * features.c - "host drives extraction": the host runs its own backbone and hands
 * libpatchcore per-layer feature maps. A features-only model (no backbone in the config)
 * is fitted with patchcore_model_add_features and scores with
 * patchcore_model_predict_features.
 *
 * The feature maps here are synthetic (a fixed pseudo-random generator), and the scores
 * are checked against a brute-force computation in plain C: the patch embeddings come
 * from patchcore_embed, the nearest memory-bank distance of every test patch is computed
 * in double precision, and an image's score is its largest patch distance.
 *
 *   features      (exit status 0 when the scores agree to 1e-4)
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "patchcore.h"

enum { N_TRAIN = 3, N_TEST = 2, C0 = 24, H0 = 8, W0 = 8, C1 = 40, H1 = 4, W1 = 4 };
enum { PATCHSIZE = 3, PRETRAIN_DIM = 32, TARGET_DIM = 16 };

static int report(const char* what, int32_t status) {
  char msg[1024];
  patchcore_last_error(msg, sizeof msg);
  fprintf(stderr, "features: %s failed: %s: %s\n", what, patchcore_status_string(status), msg);
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

/* A small deterministic generator (xorshift32) for the synthetic feature maps. */
static uint32_t rng_state = 2463534242u;
static float next_float(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 17;
  rng_state ^= rng_state << 5;
  return (float)(rng_state >> 8) / 16777216.0f;
}

/* Fills n images of both layers. Test image 1 gets a bright 2x2 spot in layer 0. */
static void make_maps(float* l0, float* l1, int n, int spot) {
  for (int i = 0; i < n * C0 * H0 * W0; i++) l0[i] = next_float();
  for (int i = 0; i < n * C1 * H1 * W1; i++) l1[i] = next_float();
  if (spot)
    for (int c = 0; c < C0; c++)
      for (int y = 3; y < 5; y++)
        for (int x = 3; x < 5; x++) l0[((1 * C0 + c) * H0 + y) * W0 + x] += 3.0f;
}

/* Embeds n images with patchcore_embed into out (n * H0 * W0 * TARGET_DIM floats). */
static int32_t embed(const float* l0, const float* l1, int n, float* out) {
  const float* layers[2] = {l0, l1};
  int64_t shapes[8] = {n, C0, H0, W0, n, C1, H1, W1};
  size_t needed = 0;
  return patchcore_embed(layers, shapes, 2, PATCHSIZE, PRETRAIN_DIM, TARGET_DIM, out,
                         (size_t)n * H0 * W0 * TARGET_DIM, &needed);
}

int main(void) {
  int rc = 0;
  int32_t st;
  patchcore_config* config = NULL;
  patchcore_model* model = NULL;
  const char* layer_names[2] = {"block_a", "block_b"};
  float* train0 = malloc(sizeof(float) * N_TRAIN * C0 * H0 * W0);
  float* train1 = malloc(sizeof(float) * N_TRAIN * C1 * H1 * W1);
  float* test0 = malloc(sizeof(float) * N_TEST * C0 * H0 * W0);
  float* test1 = malloc(sizeof(float) * N_TEST * C1 * H1 * W1);
  float* bank = malloc(sizeof(float) * N_TRAIN * H0 * W0 * TARGET_DIM);
  float* queries = malloc(sizeof(float) * N_TEST * H0 * W0 * TARGET_DIM);
  float* maps = NULL;
  size_t map_size = 0, needed = 0;
  float scores[N_TEST];
  if (!train0 || !train1 || !test0 || !test1 || !bank || !queries) {
    fprintf(stderr, "features: out of memory\n");
    rc = 1;
    goto done;
  }
  make_maps(train0, train1, N_TRAIN, 0);
  make_maps(test0, test1, N_TEST, 1);

  /* A features-only model: layer names only count the layers; no backbone is set. The
   * imagesize only sets the size of the anomaly maps. */
  CHECK(patchcore_config_create(&config));
  CHECK(patchcore_config_set_layers(config, layer_names, 2));
  CHECK(patchcore_config_set_int(config, PATCHCORE_PARAM_PRETRAIN_EMBED_DIM, PRETRAIN_DIM));
  CHECK(patchcore_config_set_int(config, PATCHCORE_PARAM_TARGET_EMBED_DIM, TARGET_DIM));
  CHECK(patchcore_config_set_int(config, PATCHCORE_PARAM_IMAGESIZE, 64));
  CHECK(patchcore_config_set_int(config, PATCHCORE_PARAM_RESIZE, 64));
  CHECK(patchcore_config_set_string(config, PATCHCORE_PARAM_SAMPLER, "identity"));
  CHECK(patchcore_model_create(config, &model));

  {
    const float* train_layers[2] = {train0, train1};
    int64_t train_shapes[8] = {N_TRAIN, C0, H0, W0, N_TRAIN, C1, H1, W1};
    CHECK(patchcore_model_add_features(model, train_layers, train_shapes, 2));
  }
  CHECK(patchcore_model_fit(model));

  CHECK(patchcore_model_map_size(model, &map_size));
  maps = malloc(sizeof(float) * N_TEST * map_size);
  if (maps == NULL) {
    fprintf(stderr, "features: out of memory\n");
    rc = 1;
    goto done;
  }
  {
    const float* test_layers[2] = {test0, test1};
    int64_t test_shapes[8] = {N_TEST, C0, H0, W0, N_TEST, C1, H1, W1};
    CHECK(patchcore_model_predict_features(model, test_layers, test_shapes, 2, scores, maps, N_TEST * map_size, &needed));
  }

  /* The brute-force oracle. */
  CHECK(embed(train0, train1, N_TRAIN, bank));
  CHECK(embed(test0, test1, N_TEST, queries));
  for (int img = 0; img < N_TEST; img++) {
    double want = 0;
    for (int p = 0; p < H0 * W0; p++) {
      const float* q = &queries[((size_t)img * H0 * W0 + p) * TARGET_DIM];
      double best = INFINITY;
      for (int b = 0; b < N_TRAIN * H0 * W0; b++) {
        double d = 0;
        for (int k = 0; k < TARGET_DIM; k++) {
          double x = (double)q[k] - bank[(size_t)b * TARGET_DIM + k];
          d += x * x;
        }
        if (d < best) best = d;
      }
      if (best > want) want = best;
    }
    double err = fabs(scores[img] - want) / (want > 1e-12 ? want : 1.0);
    printf("test image %d: score %.6f, brute force %.6f, relative difference %.2e\n", img, scores[img], want, err);
    if (err > 1e-4) {
      fprintf(stderr, "features: score of image %d disagrees with the brute-force oracle\n", img);
      rc = 1;
    }
  }
  if (!(scores[1] > scores[0])) {
    fprintf(stderr, "features: the image with the spot does not score highest\n");
    rc = 1;
  }

done:
  free(maps);
  free(queries);
  free(bank);
  free(test1);
  free(test0);
  free(train1);
  free(train0);
  if ((st = patchcore_model_free(model)) != PATCHCORE_OK) rc = report("patchcore_model_free", st);
  if ((st = patchcore_config_free(config)) != PATCHCORE_OK) rc = report("patchcore_config_free", st);
  return rc;
}
