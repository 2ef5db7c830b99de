/*
 * patchcore.h - the C interface of libpatchcore: PatchCore industrial visual anomaly
 * detection (Roth et al., CVPR 2022), compatible number for number with the reference
 * implementation (amazon-science/patchcore-inspection).
 *
 * This header is the whole interface. Anything not declared here is private.
 *
 * ---------------------------------------------------------------------------------------
 * Objects and lifetime
 *   Every object is an opaque handle: patchcore_config, patchcore_model,
 *   patchcore_aggregator, patchcore_scorer, patchcore_segmentor. Constructors (_create,
 *   _load) return a status and write the handle to their last parameter; on failure they
 *   set it to NULL. _free(NULL) does nothing; freeing an unknown or already-freed handle
 *   returns PATCHCORE_ERR_INVALID_HANDLE and never crashes. Handles are identifiers, not
 *   pointers: a stale handle is detected, never reused.
 *
 * Errors
 *   Every fallible function returns an int32_t status: PATCHCORE_OK (0) or one of the
 *   PATCHCORE_ERR_* codes below. The calling thread's last error message (naming the
 *   function and the offending value or path) is copied out by patchcore_last_error().
 *   No function ever aborts the process on bad input.
 *
 * Buffers and ownership
 *   The caller owns all memory. Inputs are borrowed for the duration of the call only; the
 *   library copies what it keeps (the memory bank). Outputs go into caller buffers whose
 *   capacity is counted in ELEMENTS (floats, bytes for byte buffers). When a buffer is too
 *   small the function returns PATCHCORE_ERR_BUFFER_TOO_SMALL and writes the needed
 *   element count to *out_needed (when out_needed is not NULL), so the same call doubles
 *   as a size query: pass NULL and 0 (NULL with a non-zero capacity is INVALID_ARGUMENT).
 *   Capacities are checked before any work is done. After a failed call the contents of
 *   output buffers are unspecified. Images are 8-bit, row-major, interleaved (HxWxC) with
 *   a row stride in bytes. Tensors are float32 row-major (C order), axis order given per
 *   parameter (NCHW for images and feature maps).
 *
 * Sizes
 *   Dimensions must be positive. Products of dimensions are checked before use: any
 *   buffer the library would read or write beyond 2^40 elements is refused with
 *   PATCHCORE_ERR_OUT_OF_MEMORY, as is any request over a documented limit.
 *
 * Threading
 *   Any OS thread may call the library. Calls that change an object (a model's or scorer's
 *   fit, add, load, calibrate, a config's set, every free) need exclusive use of it; calls
 *   that only read it (predict, segment, normalize, get, map_size, save, forward,
 *   convert) may run concurrently from many threads on one object. The library
 *   serialises misuse (a fit racing a predict waits; a free waits for the calls in
 *   flight, and calls arriving after it get INVALID_HANDLE) rather than corrupting state.
 *   Separate objects are independent. Internal parallelism is bounded per object (see
 *   patchcore_set_num_threads); the Go runtime inside the library owns background threads.
 *   Runtime limits: load at most one Go-built shared library per process, never dlclose
 *   libpatchcore, and do not use it in a child process after fork() without exec: there
 *   every call that creates, loads or uses an object fails at once with
 *   PATCHCORE_ERR_INVALID_STATE (the library's runtime threads stayed in the parent).
 *
 * ONNX Runtime
 *   Backbones run in ONNX Runtime, loaded at first use from (in order): the path given to
 *   patchcore_set_onnxruntime_path(), the environment variable PATCHCORE_ORT_LIBRARY,
 *   libonnxruntime.so.1 next to libpatchcore.so, then the system loader's search path.
 *
 * Version: this header documents ABI version 0.1 (@since 0.1 unless stated).
 * ---------------------------------------------------------------------------------------
 */
#ifndef PATCHCORE_H
#define PATCHCORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && __GNUC__ >= 4
#define PATCHCORE_API __attribute__((visibility("default")))
#else
#define PATCHCORE_API
#endif

#if defined(__GNUC__)
#define PATCHCORE_DEPRECATED(msg) __attribute__((deprecated(msg)))
#else
#define PATCHCORE_DEPRECATED(msg)
#endif

/* ------------------------------------------------------------------------- versions */

#define PATCHCORE_VERSION_MAJOR 0
#define PATCHCORE_VERSION_MINOR 1
#define PATCHCORE_VERSION_PATCH 0
#define PATCHCORE_VERSION_NUMBER \
  (PATCHCORE_VERSION_MAJOR * 10000 + PATCHCORE_VERSION_MINOR * 100 + PATCHCORE_VERSION_PATCH)

/**
 * @return the loaded library's version as major*10000 + minor*100 + patch; compare it with
 *         PATCHCORE_VERSION_NUMBER (the header's) to detect a mismatched library.
 *         Thread-safe.
 */
PATCHCORE_API int32_t patchcore_version_number(void);

/** @return the library's version string "MAJOR.MINOR.PATCH", e.g. "0.1.0" (static, never
 *  freed). Thread-safe. */
PATCHCORE_API const char* patchcore_version_string(void);

/* ------------------------------------------------------------------------- types */

/** Settings for a model, filled with patchcore_config_set_* (reference defaults). A config
 *  is only read by patchcore_model_create; it may be reused or freed afterwards. */
typedef struct patchcore_config patchcore_config;
/** A PatchCore model: backbone, embedding, memory bank, scorer, segmentor. */
typedef struct patchcore_model patchcore_model;
/** The reference's NetworkFeatureAggregator: an ONNX backbone and its extracted layers. */
typedef struct patchcore_aggregator patchcore_aggregator;
/** The reference's NearestNeighbourScorer with FaissNN or ApproximateFaissNN. */
typedef struct patchcore_scorer patchcore_scorer;
/** The reference's RescaleSegmentor: bilinear upsampling + Gaussian smoothing. */
typedef struct patchcore_segmentor patchcore_segmentor;

/* ------------------------------------------------------------------------- status codes */

#define PATCHCORE_OK 0
/** A parameter is NULL, out of range, of the wrong size, or contains NaN/Inf. */
#define PATCHCORE_ERR_INVALID_ARGUMENT 1
/** The handle is NULL where one is required, unknown, or already freed. */
#define PATCHCORE_ERR_INVALID_HANDLE 2
/** The object is in the wrong state (predict before fit, use after an internal error). */
#define PATCHCORE_ERR_INVALID_STATE 3
/** An output buffer is too small; *out_needed holds the required element count. */
#define PATCHCORE_ERR_BUFFER_TOO_SMALL 4
/** The operating system refused a read or write (missing file, read-only, disk full). */
#define PATCHCORE_ERR_IO 5
/** A file or buffer is truncated, corrupted, of an unknown version or the wrong kind. */
#define PATCHCORE_ERR_FORMAT 6
/** An allocation failed or a request exceeds the documented size limits. */
#define PATCHCORE_ERR_OUT_OF_MEMORY 7
/** A bug inside the library (a recovered panic); the object involved becomes unusable. */
#define PATCHCORE_ERR_INTERNAL 8
/** The build or the loaded runtime lacks a feature (e.g. GPU support). */
#define PATCHCORE_ERR_UNSUPPORTED 9
/** FAISS or ONNX Runtime reported a failure. */
#define PATCHCORE_ERR_BACKEND 10

/* ------------------------------------------------------------------------- constants */

/** Pixel orders for 3- and 4-channel images (1-channel images are replicated). */
#define PATCHCORE_PIXEL_RGB 0
#define PATCHCORE_PIXEL_BGR 1

/** Nearest-neighbour methods. */
#define PATCHCORE_NN_EXACT 0 /**< FAISS IndexFlatL2, as the reference's FaissNN. */
#define PATCHCORE_NN_IVFPQ 1 /**< IVF512,PQ64 (nprobe 1), as ApproximateFaissNN. */

/** Threshold calibration methods for patchcore_model_calibrate*. */
#define PATCHCORE_CALIBRATE_QUANTILE 0 /**< param = q in (0,1]: quantile of good scores. */
#define PATCHCORE_CALIBRATE_MEAN_STD 1 /**< param = k: mean + k * std of good scores. */
#define PATCHCORE_CALIBRATE_F1 2       /**< F1-optimal on labelled scores (labels 0/1). */

/**
 * Configuration keys (patchcore_config_set_* / patchcore_model_get_*): type, meaning,
 * accepted range and (default). The layers are set with patchcore_config_set_layers
 * (default "layer2", "layer3", the reference's WideResNet50 layers).
 */
#define PATCHCORE_PARAM_RESIZE 1             /**< int: shorter side after resize, [1, 32768] (256). */
#define PATCHCORE_PARAM_IMAGESIZE 2          /**< int: centre crop = map side, [1, 4096], <= RESIZE (224). */
#define PATCHCORE_PARAM_PRETRAIN_EMBED_DIM 3 /**< int: MeanMapper output, [1, 65536] (1024). */
#define PATCHCORE_PARAM_TARGET_EMBED_DIM 4   /**< int: Aggregator output, [1, 65536] (1024). */
#define PATCHCORE_PARAM_PATCHSIZE 5          /**< int: odd neighbourhood size, [1, 63] (3). */
#define PATCHCORE_PARAM_NUM_NN 6             /**< int: k nearest neighbours, [1, 65536] (1). */
#define PATCHCORE_PARAM_NN_METHOD 7          /**< int: PATCHCORE_NN_* (EXACT). */
#define PATCHCORE_PARAM_SEED 8               /**< int: sampler seed, >= 0 (0). */
#define PATCHCORE_PARAM_NUM_THREADS 9        /**< int: [0, 1024], 0 = library default (0). */
#define PATCHCORE_PARAM_BATCH_SIZE 10        /**< int: images per backbone call, [1, 4096] (8). */
#define PATCHCORE_PARAM_EMBED_BACKBONE 11    /**< int: 1 = store the ONNX in the model file (0). */
#define PATCHCORE_PARAM_PERCENTAGE 20        /**< float: coreset fraction in (0,1) (0.1). */
#define PATCHCORE_PARAM_SIGMA 21             /**< float: Gaussian sigma of the maps, [0, 64];
                                                  0 means 4, below 0.125 no smoothing (4). */
#define PATCHCORE_PARAM_MEAN 30              /**< float[3]: per-channel mean, finite (ImageNet). */
#define PATCHCORE_PARAM_STD 31               /**< float[3]: per-channel std, > 0 (ImageNet). */
#define PATCHCORE_PARAM_BACKBONE_PATH 40     /**< string: ONNX backbone file; "" = none, a
                                                  features-only model (""). */
#define PATCHCORE_PARAM_SAMPLER 41           /**< string: identity, random, greedy_coreset,
                                                  approx_greedy_coreset (the last). */
#define PATCHCORE_PARAM_DEVICE 42            /**< string: "cpu", "cuda", "cuda:N" ("cpu"). */
/* Read-only keys for patchcore_model_get_int / _get_float (setting them is
 * INVALID_ARGUMENT). */
#define PATCHCORE_PARAM_BANK_ROWS 100        /**< int: memory bank rows (0 before fit). */
#define PATCHCORE_PARAM_GRID_HEIGHT 101      /**< int: patch grid rows per image. */
#define PATCHCORE_PARAM_GRID_WIDTH 102       /**< int: patch grid columns per image. */
#define PATCHCORE_PARAM_THRESHOLD 103        /**< float: calibrated image threshold (NaN if none). */

/* ------------------------------------------------------------------------- library */

/**
 * Returns a static, human-readable name for a status code ("PATCHCORE_ERR_FORMAT"...).
 * Unknown codes give "PATCHCORE_ERR_UNKNOWN". Thread-safe.
 */
PATCHCORE_API const char* patchcore_status_string(int32_t status);

/**
 * Copies the calling thread's last error message (UTF-8, at most 2047 bytes) into buf,
 * always NUL-terminated, truncated to cap - 1 bytes. The message is kept until the
 * thread's next failing call; successful calls leave it alone.
 * @param[out] buf  destination, may be NULL when cap is 0
 * @param[in]  cap  capacity of buf in bytes
 * @return the size needed for the whole message including the NUL (1 if there is none).
 */
PATCHCORE_API size_t patchcore_last_error(char* buf, size_t cap);

/**
 * Sets the path of the ONNX Runtime shared library. Must be called before the first use of
 * a backbone; later calls with another path return PATCHCORE_ERR_INVALID_STATE.
 * @return OK, INVALID_ARGUMENT (NULL/empty), INVALID_STATE.
 */
PATCHCORE_API int32_t patchcore_set_onnxruntime_path(const char* path);

/**
 * Sets the default number of worker threads (0 = all cores, the initial value) for objects
 * created afterwards that do not set their own: models whose NUM_THREADS is 0, loaded
 * models, aggregators (ONNX Runtime intra-op threads) and scorers with num_workers 0.
 * Thread-safe. @return OK, INVALID_ARGUMENT (negative or > 1024).
 */
PATCHCORE_API int32_t patchcore_set_num_threads(int32_t n);

/** @return 1 when this build can run FAISS on a GPU, else 0. Thread-safe. */
PATCHCORE_API int32_t patchcore_gpu_available(void);

/* ------------------------------------------------------------------------- config */

/**
 * Creates a configuration holding the reference defaults (see PATCHCORE_PARAM_*).
 * @param[out] out_config  the new config
 * @return OK, INVALID_ARGUMENT (out_config NULL).
 */
PATCHCORE_API int32_t patchcore_config_create(patchcore_config** out_config);

/** Frees a configuration (NULL: no-op). Exclusive. @return OK, INVALID_HANDLE. */
PATCHCORE_API int32_t patchcore_config_free(patchcore_config* config);

/**
 * Sets an integer parameter. Exclusive.
 * @param[in] key    a PATCHCORE_PARAM_* integer key
 * @param[in] value  within the key's documented range
 * @return OK, INVALID_HANDLE, INVALID_ARGUMENT (unknown, read-only or non-integer key, or
 *         value out of range; the message names both).
 */
PATCHCORE_API int32_t patchcore_config_set_int(patchcore_config* config, int32_t key, int64_t value);

/** Sets a floating-point parameter (PERCENTAGE, SIGMA). Exclusive.
 *  @return OK, INVALID_HANDLE, INVALID_ARGUMENT (as patchcore_config_set_int; NaN). */
PATCHCORE_API int32_t patchcore_config_set_float(patchcore_config* config, int32_t key, double value);

/**
 * Sets a per-channel parameter (MEAN, STD; RGB order). Exclusive.
 * @param[in] values  count floats (copied)
 * @param[in] count   must be 3
 * @return OK, INVALID_HANDLE, INVALID_ARGUMENT (key, NULL, count, NaN/Inf, std <= 0).
 */
PATCHCORE_API int32_t patchcore_config_set_floats(patchcore_config* config, int32_t key,
                                                  const float* values, size_t count);

/**
 * Sets a UTF-8 string parameter (BACKBONE_PATH, SAMPLER, DEVICE; copied). Setting
 * BACKBONE_PATH drops backbone bytes set earlier. Exclusive.
 * @return OK, INVALID_HANDLE, INVALID_ARGUMENT (key, NULL, unknown sampler or device).
 */
PATCHCORE_API int32_t patchcore_config_set_string(patchcore_config* config, int32_t key, const char* value);

/**
 * Sets the backbone layers to extract, in network order (the first defines the patch grid).
 * Exclusive.
 * @param[in] names  count non-empty UTF-8 strings (copied): graph outputs or intermediate
 *                   tensor names of the ONNX backbone
 * @return OK, INVALID_HANDLE, INVALID_ARGUMENT (NULL, count 0 or > 16, NULL or empty name).
 */
PATCHCORE_API int32_t patchcore_config_set_layers(patchcore_config* config,
                                                  const char* const* names, size_t count);

/**
 * Sets the backbone from ONNX bytes in memory (copied) instead of a file; drops a
 * BACKBONE_PATH set earlier. Exclusive.
 * @param[in] onnx  size bytes of an ONNX model
 * @return OK, INVALID_HANDLE, INVALID_ARGUMENT (NULL or size 0), OUT_OF_MEMORY.
 */
PATCHCORE_API int32_t patchcore_config_set_backbone_bytes(patchcore_config* config,
                                                          const void* onnx, size_t size);

/* ------------------------------------------------------------------------- model */

/**
 * Creates an unfitted model. Without a backbone (no BACKBONE_PATH nor bytes) the model is
 * features-only: the host hands in per-layer feature maps (patchcore_model_*_features).
 * @param[in]  config     settings (not retained; may be freed afterwards)
 * @param[out] out_model  the new model, NULL on failure
 * @return OK, INVALID_HANDLE, INVALID_ARGUMENT (bad settings, e.g. IMAGESIZE > RESIZE,
 *         unknown layer), IO (backbone file), FORMAT (not an ONNX model), UNSUPPORTED
 *         (device, no ONNX Runtime), BACKEND.
 */
PATCHCORE_API int32_t patchcore_model_create(const patchcore_config* config, patchcore_model** out_model);

/** Frees a model (NULL: no-op), after the calls in flight on it. @return OK, INVALID_HANDLE. */
PATCHCORE_API int32_t patchcore_model_free(patchcore_model* model);

/**
 * Adds good training images to the model's pending training set (embedded immediately;
 * only the embeddings are kept). Exclusive. Call patchcore_model_fit to build the bank.
 * @param[in] pixels    n_images images stored one after another, image i at
 *                      pixels + i * height * stride, each HxWxC uint8 (C = channels); the
 *                      last row of the last image needs only width * channels bytes
 * @param[in] n_images  number of images (>= 1)
 * @param[in] width, height  image size in pixels (1..32768 each, at most 2^28 pixels; larger
 *                      images are refused before any allocation; a 1x1 image is valid and
 *                      is resized up like any other)
 * @param[in] stride    bytes per row (>= width * channels)
 * @param[in] channels  1 (gray, replicated), 3 or 4 (alpha ignored)
 * @param[in] pixel_format  PATCHCORE_PIXEL_RGB or PATCHCORE_PIXEL_BGR
 * @return OK, INVALID_HANDLE, INVALID_ARGUMENT, INVALID_STATE (features-only model),
 *         OUT_OF_MEMORY (buffer over 2^40 bytes), BACKEND.
 */
PATCHCORE_API int32_t patchcore_model_add_images(patchcore_model* model, const uint8_t* pixels,
                                                 int32_t n_images, int32_t width, int32_t height,
                                                 int32_t stride, int32_t channels, int32_t pixel_format);

/**
 * Adds good training images from PNG/JPEG files (decoded as PIL's convert("RGB")).
 * Exclusive. All or nothing: on failure nothing of this call is kept.
 * @param[in] paths  count UTF-8 file paths (1 <= count <= 2^24)
 * @return OK, INVALID_HANDLE, INVALID_ARGUMENT, INVALID_STATE (features-only model), IO,
 *         FORMAT (undecodable image, named in the message), BACKEND.
 */
PATCHCORE_API int32_t patchcore_model_add_files(patchcore_model* model, const char* const* paths, size_t count);

/**
 * Adds host-computed feature maps of good images. layers[i] points to a float32 NCHW
 * tensor of shape shapes[4*i .. 4*i+3] = {N, C_i, H_i, W_i} for the model's i-th layer
 * (n_layers = the number of layers set in the config). Exclusive.
 * @return OK, INVALID_HANDLE, INVALID_ARGUMENT (count, shapes differing from the model's,
 *         NaN/Inf), OUT_OF_MEMORY.
 */
PATCHCORE_API int32_t patchcore_model_add_features(patchcore_model* model, const float* const* layers,
                                                   const int64_t* shapes, int32_t n_layers);

/**
 * Builds the memory bank from everything added since the last fit: coreset sampling and
 * indexing. The pending set is cleared; a calibration is dropped. Exclusive.
 * @return OK, INVALID_HANDLE, INVALID_STATE (nothing added), INVALID_ARGUMENT (coreset
 *         would be empty), BACKEND.
 */
PATCHCORE_API int32_t patchcore_model_fit(patchcore_model* model);

/**
 * Number of floats of one anomaly map (imagesize * imagesize) in *out_size. Concurrent.
 * @return OK, INVALID_HANDLE, INVALID_ARGUMENT (out_size NULL).
 */
PATCHCORE_API int32_t patchcore_model_map_size(const patchcore_model* model, size_t* out_size);

/**
 * Scores images. Concurrent calls on one fitted model are allowed.
 * Image layout as patchcore_model_add_images.
 * @param[out] out_scores   n_images floats (required): image score = max patch score
 *                          (squared L2)
 * @param[out] out_maps     NULL, or n_images * map_size floats: anomaly maps
 *                          [n_images, imagesize, imagesize]
 * @param[in]  maps_capacity  capacity of out_maps in floats (ignored when out_maps is NULL)
 * @param[out] out_needed   NULL, or receives n_images * map_size
 * @return OK, INVALID_HANDLE, INVALID_ARGUMENT, INVALID_STATE (not fitted, features-only),
 *         BUFFER_TOO_SMALL, OUT_OF_MEMORY, BACKEND.
 */
PATCHCORE_API int32_t patchcore_model_predict(const patchcore_model* model, const uint8_t* pixels,
                                              int32_t n_images, int32_t width, int32_t height,
                                              int32_t stride, int32_t channels, int32_t pixel_format,
                                              float* out_scores, float* out_maps, size_t maps_capacity,
                                              size_t* out_needed);

/**
 * Scores PNG/JPEG files; outputs and codes as patchcore_model_predict, plus IO and FORMAT.
 * Concurrent.
 * @param[in] paths  count UTF-8 file paths (1 <= count <= 2^24)
 */
PATCHCORE_API int32_t patchcore_model_predict_files(const patchcore_model* model, const char* const* paths,
                                                    size_t count, float* out_scores, float* out_maps,
                                                    size_t maps_capacity, size_t* out_needed);

/**
 * Scores host-computed feature maps (layout as patchcore_model_add_features, N images,
 * the shapes the model was fitted with); outputs and codes as patchcore_model_predict.
 * Concurrent.
 */
PATCHCORE_API int32_t patchcore_model_predict_features(const patchcore_model* model, const float* const* layers,
                                                       const int64_t* shapes, int32_t n_layers,
                                                       float* out_scores, float* out_maps,
                                                       size_t maps_capacity, size_t* out_needed);

/**
 * Binary masks from anomaly maps: out_masks[i] = maps[i] >= threshold ? 1 : 0. A NaN
 * threshold means the model's calibrated threshold. Concurrent.
 * @param[in]  maps       count floats (1 <= count <= 2^40)
 * @param[out] out_masks  count bytes
 * @return OK, INVALID_HANDLE, INVALID_ARGUMENT, INVALID_STATE (NaN threshold, uncalibrated).
 */
PATCHCORE_API int32_t patchcore_model_segment(const patchcore_model* model, const float* maps, size_t count,
                                              float threshold, uint8_t* out_masks);

/**
 * Calibrates and stores the image threshold from held-out GOOD images (layout as
 * patchcore_model_predict): method QUANTILE (param = q in (0,1]) or MEAN_STD (param = k).
 * Exclusive.
 * @param[out] out_threshold  NULL or the threshold.
 * @return OK, INVALID_HANDLE, INVALID_ARGUMENT (method F1, param), INVALID_STATE (not
 *         fitted), BACKEND.
 */
PATCHCORE_API int32_t patchcore_model_calibrate(patchcore_model* model, const uint8_t* pixels,
                                                int32_t n_images, int32_t width, int32_t height,
                                                int32_t stride, int32_t channels, int32_t pixel_format,
                                                int32_t method, double param, float* out_threshold);

/**
 * Calibrates and stores the threshold from image scores the caller already has:
 * QUANTILE / MEAN_STD use the scores with label 0 (labels may be NULL: all good);
 * F1 needs labels (0 good, 1 anomalous) and picks the F1-optimal score. Exclusive.
 * @param[in]  scores  count finite floats (1 <= count <= 2^40)
 * @param[in]  labels  NULL or count int32 values, each 0 or 1
 * @param[out] out_threshold  NULL or the threshold.
 * @return OK, INVALID_HANDLE, INVALID_ARGUMENT, INVALID_STATE (not fitted).
 */
PATCHCORE_API int32_t patchcore_model_calibrate_scores(patchcore_model* model, const float* scores,
                                                       const int32_t* labels, size_t count, int32_t method,
                                                       double param, float* out_threshold);

/**
 * Normalises image scores to [0,1] with the calibrated threshold at 0.5:
 * clamp((s - threshold) / (max - min) + 0.5, 0, 1) with min/max of the calibration
 * scores. Concurrent.
 * @param[in]  scores          count floats (1 <= count <= 2^40)
 * @param[out] out_normalized  count floats (may equal scores)
 * @return OK, INVALID_HANDLE, INVALID_ARGUMENT, INVALID_STATE (not calibrated).
 */
PATCHCORE_API int32_t patchcore_model_normalize_scores(const patchcore_model* model, const float* scores,
                                                       size_t count, float* out_normalized);

/**
 * Reads an integer setting or property (PATCHCORE_PARAM_* integer keys, including
 * BANK_ROWS, GRID_HEIGHT, GRID_WIDTH: 0 before fit). Concurrent.
 * @return OK, INVALID_HANDLE, INVALID_ARGUMENT (out_value NULL, unknown or non-integer key).
 */
PATCHCORE_API int32_t patchcore_model_get_int(const patchcore_model* model, int32_t key, int64_t* out_value);

/**
 * Reads a floating-point setting or property (PERCENTAGE, SIGMA, THRESHOLD: NaN when not
 * calibrated). Concurrent.
 * @return OK, INVALID_HANDLE, INVALID_ARGUMENT (out_value NULL, unknown or non-float key).
 */
PATCHCORE_API int32_t patchcore_model_get_float(const patchcore_model* model, int32_t key, double* out_value);

/**
 * Saves a fitted model atomically: path holds the old file or the complete new one, never
 * a partial file. The backbone is recorded by file name and sha256 (embedded when
 * EMBED_BACKBONE is 1). Concurrent.
 * @return OK, INVALID_HANDLE, INVALID_ARGUMENT, INVALID_STATE (not fitted), IO.
 */
PATCHCORE_API int32_t patchcore_model_save(const patchcore_model* model, const char* path);

/**
 * Serialises a fitted model into buf (capacity in bytes). With a too small buffer
 * (or NULL/0) returns BUFFER_TOO_SMALL and the needed size in *out_needed. Each call
 * serialises the model, the size query included. Concurrent.
 * @return OK, INVALID_HANDLE, INVALID_ARGUMENT, INVALID_STATE (not fitted), BUFFER_TOO_SMALL.
 */
PATCHCORE_API int32_t patchcore_model_save_to_buffer(const patchcore_model* model, void* buf, size_t capacity,
                                                     size_t* out_needed);

/**
 * Loads a model file. The backbone is the one embedded in the file, else backbone_path
 * (may be NULL), else the file name recorded in the model, looked up next to the model
 * file; its sha256 must match the one recorded at fit time.
 * @param[out] out_model  the loaded model, NULL on failure
 * @return OK, INVALID_ARGUMENT (NULL path, backbone mismatch), IO (model or backbone
 *         file), FORMAT (truncated, corrupted, unknown version), UNSUPPORTED, BACKEND.
 */
PATCHCORE_API int32_t patchcore_model_load(const char* path, const char* backbone_path, patchcore_model** out_model);

/**
 * Loads a model from size bytes written by patchcore_model_save_to_buffer (copied); a
 * recorded backbone file name is looked up in the current directory. Codes as
 * patchcore_model_load.
 */
PATCHCORE_API int32_t patchcore_model_load_from_buffer(const void* buf, size_t size, const char* backbone_path,
                                                       patchcore_model** out_model);

/* ------------------------------------------------------------------------- aggregator */

/**
 * Creates a NetworkFeatureAggregator over an ONNX backbone given by path or by bytes
 * (exactly one of onnx_path and onnx_bytes is non-NULL; the bytes are only read during
 * the call).
 * @param[in] onnx_bytes, n_bytes  the ONNX model in memory (n_bytes >= 1)
 * @param[in] layers, n_layers  graph outputs or intermediate tensor names to extract (1..16)
 * @param[in] device  "cpu", "cuda" or "cuda:N" (NULL = "cpu")
 * @param[out] out_aggregator  the new aggregator, NULL on failure
 * @return OK, INVALID_ARGUMENT (unknown layer, bad device), IO, FORMAT, UNSUPPORTED, BACKEND.
 */
PATCHCORE_API int32_t patchcore_aggregator_create(const char* onnx_path, const void* onnx_bytes, size_t n_bytes,
                                                  const char* const* layers, size_t n_layers, const char* device,
                                                  patchcore_aggregator** out_aggregator);

/** Frees an aggregator (NULL: no-op), after the calls in flight on it.
 *  @return OK, INVALID_HANDLE. */
PATCHCORE_API int32_t patchcore_aggregator_free(patchcore_aggregator* aggregator);

/**
 * Feature map shapes for an input of channels x height x width (a dry run, as the
 * reference's feature_dimensions; cached per size). Concurrent.
 * @param[out] out_shapes  n_layers triples {C, H, W}
 * @param[in]  capacity    capacity of out_shapes in elements (>= 3 * n_layers)
 * @param[out] out_needed  NULL, or receives 3 * n_layers
 * @return OK, INVALID_HANDLE, INVALID_ARGUMENT, BUFFER_TOO_SMALL, BACKEND.
 */
PATCHCORE_API int32_t patchcore_aggregator_feature_shapes(const patchcore_aggregator* aggregator, int32_t channels,
                                                          int32_t height, int32_t width, int64_t* out_shapes,
                                                          size_t capacity, size_t* out_needed);

/**
 * Runs the backbone on images [n, channels, height, width] (float32 NCHW, already
 * normalised as the backbone expects; channels, height, width <= 2^20) and writes layer
 * `layer_index`'s output [n, C, H, W] to out. Concurrent.
 * @param[out] out         n * C * H * W floats
 * @param[in]  capacity    capacity of out in floats
 * @param[out] out_needed  NULL, or receives n * C * H * W
 * @return OK, INVALID_HANDLE, INVALID_ARGUMENT (layer_index, shapes, NaN), BUFFER_TOO_SMALL,
 *         OUT_OF_MEMORY, BACKEND.
 */
PATCHCORE_API int32_t patchcore_aggregator_forward(const patchcore_aggregator* aggregator, const float* images,
                                                   int64_t n, int64_t channels, int64_t height, int64_t width,
                                                   int32_t layer_index, float* out, size_t capacity,
                                                   size_t* out_needed);

/**
 * Runs the backbone once on images [n, channels, height, width] (as
 * patchcore_aggregator_forward) and writes every layer's output: outs[i] receives layer
 * i's [n, C_i, H_i, W_i] floats. Concurrent. @since 0.1
 * @param[out] outs        n_outs (= number of layers) caller buffers
 * @param[in]  capacities  n_outs capacities in floats
 * @param[in]  n_outs      must equal the aggregator's number of layers
 * @param[out] out_needed  NULL, or n_outs entries receiving n * C_i * H_i * W_i
 * @return OK, INVALID_HANDLE, INVALID_ARGUMENT (n_outs, shapes, NaN, a NULL buffer with a
 *         capacity), BUFFER_TOO_SMALL (any buffer; every needed size is written),
 *         OUT_OF_MEMORY, BACKEND.
 */
PATCHCORE_API int32_t patchcore_aggregator_forward_all(const patchcore_aggregator* aggregator, const float* images,
                                                       int64_t n, int64_t channels, int64_t height, int64_t width,
                                                       float* const* outs, const size_t* capacities, size_t n_outs,
                                                       size_t* out_needed);

/* ------------------------------------------------------------------------- embedding */

/**
 * The post-backbone pipeline of the reference (PatchMaker, layer alignment, Preprocessing,
 * Aggregator): per-layer feature maps (layout as patchcore_model_add_features, 1..16
 * layers) to patch embeddings [N * gridH * gridW, target_dim], image-major then row-major
 * on the first layer's grid (stride 1, so gridH x gridW = H_0 x W_0). Thread-safe.
 * @param[in]  patchsize     odd, 1..63
 * @param[in]  pretrain_dim, target_dim  1..65536
 * @param[out] out           N * H_0 * W_0 * target_dim floats
 * @param[in]  capacity      capacity of out in floats
 * @param[out] out_needed    NULL, or receives N * H_0 * W_0 * target_dim
 * @return OK, INVALID_ARGUMENT, BUFFER_TOO_SMALL, OUT_OF_MEMORY.
 */
PATCHCORE_API int32_t patchcore_embed(const float* const* layers, const int64_t* shapes, int32_t n_layers,
                                      int32_t patchsize, int32_t pretrain_dim, int32_t target_dim, float* out,
                                      size_t capacity, size_t* out_needed);

/**
 * PyTorch's adaptive_avg_pool1d on rows: in [rows, in_len] -> out [rows, out_len], window
 * i = [floor(i*in_len/out_len), ceil((i+1)*in_len/out_len)). Thread-safe.
 * @param[out] out  rows * out_len floats
 * @return OK, INVALID_ARGUMENT, OUT_OF_MEMORY.
 */
PATCHCORE_API int32_t patchcore_adaptive_avg_pool1d(const float* in, int64_t rows, int64_t in_len, int64_t out_len,
                                                    float* out);

/* ------------------------------------------------------------------------- scorer */

/**
 * Creates a NearestNeighbourScorer(k, FaissNN / ApproximateFaissNN).
 * @param[in] k  neighbours averaged per query (1..65536)
 * @param[in] nn_method  PATCHCORE_NN_EXACT or PATCHCORE_NN_IVFPQ
 * @param[in] on_gpu  0 (1 gives UNSUPPORTED in a CPU build)
 * @param[in] num_workers  search threads, 0..1024 (0 = the library default)
 * @param[out] out_scorer  the new scorer, NULL on failure
 * @return OK, INVALID_ARGUMENT, UNSUPPORTED.
 */
PATCHCORE_API int32_t patchcore_scorer_create(int32_t k, int32_t nn_method, int32_t on_gpu, int32_t num_workers,
                                              patchcore_scorer** out_scorer);

/** Frees a scorer (NULL: no-op), after the calls in flight on it. @return OK, INVALID_HANDLE. */
PATCHCORE_API int32_t patchcore_scorer_free(patchcore_scorer* scorer);

/**
 * Fits on features [n, d] (float32 row-major, finite, copied). Exclusive.
 * @return OK, INVALID_HANDLE, INVALID_ARGUMENT, OUT_OF_MEMORY, BACKEND.
 */
PATCHCORE_API int32_t patchcore_scorer_fit(patchcore_scorer* scorer, const float* features, int64_t n, int64_t d);

/**
 * Scores queries [n, d]: out_scores[n] = mean of the k squared L2 distances;
 * out_distances [n, k] and out_indices [n, k] (ascending distance) may be NULL. Concurrent.
 * @return OK, INVALID_HANDLE, INVALID_ARGUMENT (d differs from the fitted one, k larger
 *         than the bank), INVALID_STATE (not fitted), OUT_OF_MEMORY, BACKEND.
 */
PATCHCORE_API int32_t patchcore_scorer_predict(const patchcore_scorer* scorer, const float* queries, int64_t n,
                                               int64_t d, float* out_scores, float* out_distances,
                                               int64_t* out_indices);

/**
 * Saves with the reference's file names: <folder>/<prepend>nnscorer_search_index.faiss
 * (FAISS format) and, when save_features_separately is 1, <prepend>nnscorer_features.pkl.
 * prepend may be NULL (""). Concurrent.
 * @return OK, INVALID_HANDLE, INVALID_ARGUMENT, INVALID_STATE (not fitted), IO, BACKEND.
 */
PATCHCORE_API int32_t patchcore_scorer_save(const patchcore_scorer* scorer, const char* folder,
                                            int32_t save_features_separately, const char* prepend);

/**
 * Loads what patchcore_scorer_save (or the reference) wrote; prepend may be NULL.
 * Exclusive. @return OK, INVALID_HANDLE, INVALID_ARGUMENT, IO, FORMAT, BACKEND.
 */
PATCHCORE_API int32_t patchcore_scorer_load(patchcore_scorer* scorer, const char* folder, const char* prepend);

/* ------------------------------------------------------------------------- segmentor */

/**
 * Creates a RescaleSegmentor for target_height x target_width maps (1..32768 each):
 * bilinear upsampling (align_corners=False), then a Gaussian of the given sigma (truncate
 * 4, mode reflect). sigma in [0, 1000]; 0 means the reference's 4, below 0.125 means no
 * smoothing.
 * @param[out] out_segmentor  the new segmentor, NULL on failure
 * @return OK, INVALID_ARGUMENT.
 */
PATCHCORE_API int32_t patchcore_segmentor_create(int32_t target_height, int32_t target_width, double sigma,
                                                 patchcore_segmentor** out_segmentor);

/** Frees a segmentor (NULL: no-op). @return OK, INVALID_HANDLE. */
PATCHCORE_API int32_t patchcore_segmentor_free(patchcore_segmentor* segmentor);

/**
 * Patch scores [n, h, w] (finite) -> segmentations [n, target_height, target_width].
 * Concurrent.
 * @param[in]  capacity    capacity of out in floats
 * @param[out] out_needed  NULL, or receives n * target_height * target_width
 * @return OK, INVALID_HANDLE, INVALID_ARGUMENT, BUFFER_TOO_SMALL, OUT_OF_MEMORY.
 */
PATCHCORE_API int32_t patchcore_segmentor_convert(const patchcore_segmentor* segmentor, const float* patch_scores,
                                                  int64_t n, int64_t h, int64_t w, float* out, size_t capacity,
                                                  size_t* out_needed);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* PATCHCORE_H */
