/*
 * main.c - a minimal program using an installed libpatchcore (see CMakeLists.txt here, or
 * build it with pkg-config: cc main.c $(pkg-config --cflags --libs patchcore)).
 * It checks that the header and the loaded library agree, scores two points against a
 * three-point memory bank, and, given an ONNX file, creates a backbone aggregator, which
 * loads the libonnxruntime.so.1 installed next to libpatchcore.so.
 *
 *   consumer [BACKBONE.onnx LAYER]
 */
#include <stdio.h>

#include "patchcore.h"

static int fail(const char* what, int32_t status) {
  char msg[512];
  patchcore_last_error(msg, sizeof msg);
  fprintf(stderr, "consumer: %s: %s: %s\n", what, patchcore_status_string(status), msg);
  return 1;
}

int main(int argc, char** argv) {
  if (patchcore_version_number() != PATCHCORE_VERSION_NUMBER) {
    fprintf(stderr, "consumer: header %d, library %d\n", PATCHCORE_VERSION_NUMBER, patchcore_version_number());
    return 1;
  }
  patchcore_scorer* scorer = NULL;
  const float bank[6] = {0, 0, 1, 0, 0, 2};
  const float queries[4] = {1, 1, 0, 3};
  float scores[2];
  int32_t st = patchcore_scorer_create(1, PATCHCORE_NN_EXACT, 0, 1, &scorer);
  if (st != PATCHCORE_OK) return fail("patchcore_scorer_create", st);
  if ((st = patchcore_scorer_fit(scorer, bank, 3, 2)) != PATCHCORE_OK ||
      (st = patchcore_scorer_predict(scorer, queries, 2, 2, scores, NULL, NULL)) != PATCHCORE_OK) {
    patchcore_scorer_free(scorer);
    return fail("patchcore_scorer_fit/predict", st);
  }
  if ((st = patchcore_scorer_free(scorer)) != PATCHCORE_OK) return fail("patchcore_scorer_free", st);
  /* Squared distances to the nearest bank point: (1,1) -> 1, (0,3) -> 1. */
  if (scores[0] != 1.0f || scores[1] != 1.0f) {
    fprintf(stderr, "consumer: scores %g %g, want 1 1\n", scores[0], scores[1]);
    return 1;
  }
  if (argc > 2) {
    patchcore_aggregator* agg = NULL;
    const char* layers[1] = {argv[2]};
    int64_t shape[3];
    if ((st = patchcore_aggregator_create(argv[1], NULL, 0, layers, 1, NULL, &agg)) != PATCHCORE_OK)
      return fail("patchcore_aggregator_create", st);
    st = patchcore_aggregator_feature_shapes(agg, 3, 224, 224, shape, 3, NULL);
    patchcore_aggregator_free(agg);
    if (st != PATCHCORE_OK) return fail("patchcore_aggregator_feature_shapes", st);
    printf("consumer: layer %s gives %lldx%lldx%lld\n", argv[2], (long long)shape[0], (long long)shape[1], (long long)shape[2]);
  }
  printf("consumer: libpatchcore %s OK\n", patchcore_version_string());
  return 0;
}
