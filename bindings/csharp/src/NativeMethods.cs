// P/Invoke declarations for every function of include/patchcore.h. Nothing else in the
// binding calls native code directly.
//
// Type mapping: int32_t -> int, int64_t -> long, size_t -> UIntPtr, double -> double,
// uint8_t* / float* / int64_t* / int32_t* -> unmanaged pointers (the callers pin managed
// memory with `fixed` or GCHandle for the duration of one call), opaque object pointers ->
// SafeHandle subclasses (or IntPtr in the _free functions the handles call). C `bool` and C
// `long` never appear. Strings are UTF-8 (LPUTF8Str); arrays of strings go through
// Utf8StringArray. Static strings returned by the library are IntPtr, never freed.
using System;
using System.Runtime.InteropServices;

// Search the application's directory, then the system's safe directories only (not the
// current directory on Windows). Mono uses PatchCore.dll.config's dllmap instead.
[assembly: DefaultDllImportSearchPaths(DllImportSearchPath.AssemblyDirectory | DllImportSearchPath.SafeDirectories)]

namespace PatchCore
{
    /// <summary>The raw C interface. Internal: use the public classes.</summary>
    internal static unsafe class NativeMethods
    {
        /// <summary>The library name DllImport resolves: libpatchcore.so, patchcore.dll, libpatchcore.dylib.</summary>
        internal const string Library = "patchcore";

        private const CallingConvention Conv = CallingConvention.Cdecl;

        // ----------------------------------------------------------------- library

        [DllImport(Library, CallingConvention = Conv)]
        internal static extern int patchcore_version_number();

        [DllImport(Library, CallingConvention = Conv)]
        internal static extern IntPtr patchcore_version_string();

        [DllImport(Library, CallingConvention = Conv)]
        internal static extern IntPtr patchcore_status_string(int status);

        [DllImport(Library, CallingConvention = Conv)]
        internal static extern UIntPtr patchcore_last_error(byte* buf, UIntPtr cap);

        [DllImport(Library, CallingConvention = Conv)]
        internal static extern int patchcore_set_onnxruntime_path([MarshalAs(UnmanagedType.LPUTF8Str)] string path);

        [DllImport(Library, CallingConvention = Conv)]
        internal static extern int patchcore_set_num_threads(int n);

        [DllImport(Library, CallingConvention = Conv)]
        internal static extern int patchcore_gpu_available();

        // ----------------------------------------------------------------- config

        [DllImport(Library, CallingConvention = Conv)]
        internal static extern int patchcore_config_create(out ConfigHandle config);

        [DllImport(Library, CallingConvention = Conv)]
        internal static extern int patchcore_config_free(IntPtr config);

        [DllImport(Library, CallingConvention = Conv)]
        internal static extern int patchcore_config_set_int(ConfigHandle config, int key, long value);

        [DllImport(Library, CallingConvention = Conv)]
        internal static extern int patchcore_config_set_float(ConfigHandle config, int key, double value);

        [DllImport(Library, CallingConvention = Conv)]
        internal static extern int patchcore_config_set_floats(ConfigHandle config, int key, float* values, UIntPtr count);

        [DllImport(Library, CallingConvention = Conv)]
        internal static extern int patchcore_config_set_string(ConfigHandle config, int key,
            [MarshalAs(UnmanagedType.LPUTF8Str)] string value);

        [DllImport(Library, CallingConvention = Conv)]
        internal static extern int patchcore_config_set_layers(ConfigHandle config, IntPtr* names, UIntPtr count);

        [DllImport(Library, CallingConvention = Conv)]
        internal static extern int patchcore_config_set_backbone_bytes(ConfigHandle config, byte* onnx, UIntPtr size);

        // ----------------------------------------------------------------- model

        [DllImport(Library, CallingConvention = Conv)]
        internal static extern int patchcore_model_create(ConfigHandle config, out ModelHandle model);

        [DllImport(Library, CallingConvention = Conv)]
        internal static extern int patchcore_model_free(IntPtr model);

        [DllImport(Library, CallingConvention = Conv)]
        internal static extern int patchcore_model_add_images(ModelHandle model, byte* pixels, int nImages,
            int width, int height, int stride, int channels, int pixelFormat);

        [DllImport(Library, CallingConvention = Conv)]
        internal static extern int patchcore_model_add_files(ModelHandle model, IntPtr* paths, UIntPtr count);

        [DllImport(Library, CallingConvention = Conv)]
        internal static extern int patchcore_model_add_features(ModelHandle model, IntPtr* layers, long* shapes, int nLayers);

        [DllImport(Library, CallingConvention = Conv)]
        internal static extern int patchcore_model_fit(ModelHandle model);

        [DllImport(Library, CallingConvention = Conv)]
        internal static extern int patchcore_model_map_size(ModelHandle model, out UIntPtr size);

        [DllImport(Library, CallingConvention = Conv)]
        internal static extern int patchcore_model_predict(ModelHandle model, byte* pixels, int nImages,
            int width, int height, int stride, int channels, int pixelFormat,
            float* outScores, float* outMaps, UIntPtr mapsCapacity, out UIntPtr needed);

        [DllImport(Library, CallingConvention = Conv)]
        internal static extern int patchcore_model_predict_files(ModelHandle model, IntPtr* paths, UIntPtr count,
            float* outScores, float* outMaps, UIntPtr mapsCapacity, out UIntPtr needed);

        [DllImport(Library, CallingConvention = Conv)]
        internal static extern int patchcore_model_predict_features(ModelHandle model, IntPtr* layers, long* shapes,
            int nLayers, float* outScores, float* outMaps, UIntPtr mapsCapacity, out UIntPtr needed);

        [DllImport(Library, CallingConvention = Conv)]
        internal static extern int patchcore_model_segment(ModelHandle model, float* maps, UIntPtr count,
            float threshold, byte* outMasks);

        [DllImport(Library, CallingConvention = Conv)]
        internal static extern int patchcore_model_calibrate(ModelHandle model, byte* pixels, int nImages,
            int width, int height, int stride, int channels, int pixelFormat,
            int method, double param, out float threshold);

        [DllImport(Library, CallingConvention = Conv)]
        internal static extern int patchcore_model_calibrate_scores(ModelHandle model, float* scores, int* labels,
            UIntPtr count, int method, double param, out float threshold);

        [DllImport(Library, CallingConvention = Conv)]
        internal static extern int patchcore_model_normalize_scores(ModelHandle model, float* scores, UIntPtr count,
            float* outNormalized);

        [DllImport(Library, CallingConvention = Conv)]
        internal static extern int patchcore_model_get_int(ModelHandle model, int key, out long value);

        [DllImport(Library, CallingConvention = Conv)]
        internal static extern int patchcore_model_get_float(ModelHandle model, int key, out double value);

        [DllImport(Library, CallingConvention = Conv)]
        internal static extern int patchcore_model_save(ModelHandle model, [MarshalAs(UnmanagedType.LPUTF8Str)] string path);

        [DllImport(Library, CallingConvention = Conv)]
        internal static extern int patchcore_model_save_to_buffer(ModelHandle model, byte* buf, UIntPtr capacity,
            out UIntPtr needed);

        [DllImport(Library, CallingConvention = Conv)]
        internal static extern int patchcore_model_load([MarshalAs(UnmanagedType.LPUTF8Str)] string path,
            [MarshalAs(UnmanagedType.LPUTF8Str)] string backbonePath, out ModelHandle model);

        [DllImport(Library, CallingConvention = Conv)]
        internal static extern int patchcore_model_load_from_buffer(byte* buf, UIntPtr size,
            [MarshalAs(UnmanagedType.LPUTF8Str)] string backbonePath, out ModelHandle model);

        // ----------------------------------------------------------------- aggregator

        [DllImport(Library, CallingConvention = Conv)]
        internal static extern int patchcore_aggregator_create([MarshalAs(UnmanagedType.LPUTF8Str)] string onnxPath,
            byte* onnxBytes, UIntPtr nBytes, IntPtr* layers, UIntPtr nLayers,
            [MarshalAs(UnmanagedType.LPUTF8Str)] string device, out AggregatorHandle aggregator);

        [DllImport(Library, CallingConvention = Conv)]
        internal static extern int patchcore_aggregator_free(IntPtr aggregator);

        [DllImport(Library, CallingConvention = Conv)]
        internal static extern int patchcore_aggregator_feature_shapes(AggregatorHandle aggregator, int channels,
            int height, int width, long* outShapes, UIntPtr capacity, out UIntPtr needed);

        [DllImport(Library, CallingConvention = Conv)]
        internal static extern int patchcore_aggregator_forward(AggregatorHandle aggregator, float* images,
            long n, long channels, long height, long width, int layerIndex, float* output, UIntPtr capacity,
            out UIntPtr needed);

        [DllImport(Library, CallingConvention = Conv)]
        internal static extern int patchcore_aggregator_forward_all(AggregatorHandle aggregator, float* images,
            long n, long channels, long height, long width, float** outputs, UIntPtr* capacities, UIntPtr nOutputs,
            UIntPtr* needed);

        // ----------------------------------------------------------------- embedding

        [DllImport(Library, CallingConvention = Conv)]
        internal static extern int patchcore_embed(IntPtr* layers, long* shapes, int nLayers, int patchsize,
            int pretrainDim, int targetDim, float* output, UIntPtr capacity, out UIntPtr needed);

        [DllImport(Library, CallingConvention = Conv)]
        internal static extern int patchcore_adaptive_avg_pool1d(float* input, long rows, long inLen, long outLen,
            float* output);

        // ----------------------------------------------------------------- scorer

        [DllImport(Library, CallingConvention = Conv)]
        internal static extern int patchcore_scorer_create(int k, int nnMethod, int onGpu, int numWorkers,
            out ScorerHandle scorer);

        [DllImport(Library, CallingConvention = Conv)]
        internal static extern int patchcore_scorer_free(IntPtr scorer);

        [DllImport(Library, CallingConvention = Conv)]
        internal static extern int patchcore_scorer_fit(ScorerHandle scorer, float* features, long n, long d);

        [DllImport(Library, CallingConvention = Conv)]
        internal static extern int patchcore_scorer_predict(ScorerHandle scorer, float* queries, long n, long d,
            float* outScores, float* outDistances, long* outIndices);

        [DllImport(Library, CallingConvention = Conv)]
        internal static extern int patchcore_scorer_save(ScorerHandle scorer,
            [MarshalAs(UnmanagedType.LPUTF8Str)] string folder, int saveFeaturesSeparately,
            [MarshalAs(UnmanagedType.LPUTF8Str)] string prepend);

        [DllImport(Library, CallingConvention = Conv)]
        internal static extern int patchcore_scorer_load(ScorerHandle scorer,
            [MarshalAs(UnmanagedType.LPUTF8Str)] string folder, [MarshalAs(UnmanagedType.LPUTF8Str)] string prepend);

        // ----------------------------------------------------------------- segmentor

        [DllImport(Library, CallingConvention = Conv)]
        internal static extern int patchcore_segmentor_create(int targetHeight, int targetWidth, double sigma,
            out SegmentorHandle segmentor);

        [DllImport(Library, CallingConvention = Conv)]
        internal static extern int patchcore_segmentor_free(IntPtr segmentor);

        [DllImport(Library, CallingConvention = Conv)]
        internal static extern int patchcore_segmentor_convert(SegmentorHandle segmentor, float* patchScores,
            long n, long h, long w, float* output, UIntPtr capacity, out UIntPtr needed);

        // ----------------------------------------------------------------- loader diagnostics

        private const string LibDl = "libdl.so.2";

        [DllImport(LibDl, EntryPoint = "dlopen")]
        private static extern IntPtr DlOpen([MarshalAs(UnmanagedType.LPUTF8Str)] string file, int mode);

        [DllImport(LibDl, EntryPoint = "dlerror")]
        private static extern IntPtr DlError();

        /// <summary>
        /// The system loader's own error for libpatchcore (a missing dependency such as
        /// libgomp.so.1, an exhausted static TLS block...), which DllNotFoundException does not
        /// carry; null when it is not a Linux loader failure or cannot be determined.
        /// </summary>
        internal static string LoaderError()
        {
            if (Environment.OSVersion.Platform != PlatformID.Unix)
            {
                return null;
            }
            try
            {
                string dir = System.IO.Path.GetDirectoryName(typeof(NativeMethods).Assembly.Location);
                string first = null;
                foreach (string name in new[] { "libpatchcore.so.0", "libpatchcore.so" })
                {
                    string local = System.IO.Path.Combine(dir, name);
                    const int RtldNow = 2;
                    if (DlOpen(System.IO.File.Exists(local) ? local : name, RtldNow) != IntPtr.Zero)
                    {
                        return null; // loadable: the failure was elsewhere (the library is never unloaded)
                    }
                    first = first ?? Errors.FromUtf8(DlError());
                }
                return first;
            }
            catch (Exception)
            {
                return null; // no libdl (not glibc): nothing more to say
            }
        }

#if NETCOREAPP3_0_OR_GREATER
        private static string libraryPath;
        private static int resolverInstalled;

        /// <summary>
        /// Makes DllImport load the library from <paramref name="path"/>. Takes effect only when
        /// called before the first call into the library.
        /// </summary>
        internal static void SetLibraryPath(string path)
        {
            libraryPath = path;
            if (System.Threading.Interlocked.Exchange(ref resolverInstalled, 1) == 0)
            {
                NativeLibrary.SetDllImportResolver(typeof(NativeMethods).Assembly, Resolve);
            }
        }

        private static IntPtr Resolve(string name, System.Reflection.Assembly assembly, DllImportSearchPath? paths)
        {
            string path = libraryPath;
            if (name != Library || path == null)
            {
                return IntPtr.Zero; // default probing
            }
            return NativeLibrary.Load(path);
        }
#endif
    }
}
