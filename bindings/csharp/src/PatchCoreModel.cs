using System;
using System.Collections.Generic;

namespace PatchCore
{
    /// <summary>Threshold calibration methods.</summary>
    public enum CalibrationMethod
    {
        /// <summary>param = q in (0, 1]: the q-quantile of the good images' scores.</summary>
        Quantile = 0,
        /// <summary>param = k: mean + k * std of the good images' scores.</summary>
        MeanStd = 1,
        /// <summary>The F1-optimal score on labelled scores (0 good, 1 anomalous); param unused.</summary>
        F1 = 2,
    }

    /// <summary>Image scores and (optionally) anomaly maps of a prediction.</summary>
    public sealed class PatchCoreResult
    {
        internal PatchCoreResult(float[] scores, float[] maps, int mapHeight, int mapWidth)
        {
            Scores = scores;
            Maps = maps;
            MapHeight = mapHeight;
            MapWidth = mapWidth;
        }

        /// <summary>One score per image: the maximum patch score (squared L2 distance to the memory bank).</summary>
        public float[] Scores { get; }

        /// <summary>Anomaly maps [images, MapHeight, MapWidth] row-major, or null when not requested.</summary>
        public float[] Maps { get; }

        /// <summary>Rows of one anomaly map.</summary>
        public int MapHeight { get; }

        /// <summary>Columns of one anomaly map.</summary>
        public int MapWidth { get; }

        /// <summary>Floats per anomaly map.</summary>
        public int MapSize => MapHeight * MapWidth;

        /// <summary>A copy of image <paramref name="index"/>'s anomaly map (MapHeight * MapWidth floats).</summary>
        public float[] GetMap(int index)
        {
            if (Maps == null)
            {
                throw new InvalidOperationException("the prediction was made without anomaly maps");
            }
            if (index < 0 || index >= Scores.Length)
            {
                throw new ArgumentOutOfRangeException(nameof(index));
            }
            var map = new float[MapSize];
            Array.Copy(Maps, (long)index * MapSize, map, 0, MapSize);
            return map;
        }
    }

    /// <summary>
    /// A PatchCore model: backbone, embedding, memory bank, nearest-neighbour scorer and
    /// segmentor, as the reference's PatchCore class.
    /// <para>Threading: Predict*, Segment, NormalizeScores, Save, SaveToBytes and the getters
    /// may run concurrently from many threads on one fitted model. Add*, Fit*, Calibrate* need
    /// exclusive use (the library serialises misuse instead of corrupting state). Dispose while another thread
    /// is inside a call is safe: the native object is freed when that call returns.</para>
    /// <para>Images are described by <see cref="ImageLayout"/> and passed as a byte array
    /// (with offset) or as a pointer to unmanaged memory (a camera frame, a locked Bitmap's
    /// Scan0) that is read in place, without a copy.</para>
    /// </summary>
    public sealed partial class PatchCoreModel : IDisposable
    {
        private readonly ModelHandle handle;
        private int mapSize;
        private int mapSide;

        /// <summary>Creates an unfitted model with the given settings.</summary>
        /// <exception cref="PatchCoreException">InvalidArgument (bad settings, unknown layer), IO and Format (backbone file), Unsupported (device), Backend.</exception>
        public PatchCoreModel(PatchCoreConfig config)
        {
            Errors.NotNull(config, "PatchCoreModel", "config");
            PatchCoreLibrary.EnsureCompatible();
            using (ConfigHandle c = config.CreateHandle())
            {
                Errors.Check(NativeMethods.patchcore_model_create(c, out handle));
            }
        }

        private PatchCoreModel(ModelHandle handle)
        {
            this.handle = handle;
        }

        /// <summary>True after <see cref="Dispose"/>.</summary>
        public bool IsDisposed => handle.IsClosed;

        /// <summary>Frees the native model. Idempotent.</summary>
        public void Dispose()
        {
            handle.Dispose();
        }

        // ------------------------------------------------------------- persistence

        /// <summary>
        /// Loads a model file written by <see cref="Save"/>. Its backbone is the one embedded in
        /// the file, else <paramref name="backbonePath"/>, else the recorded file name looked up
        /// next to the model file; its sha256 must match the one recorded at fit time.
        /// </summary>
        /// <param name="path">the model file</param>
        /// <param name="backbonePath">null, or the ONNX backbone file</param>
        /// <exception cref="PatchCoreException">IO, Format (truncated, corrupted, unknown version), InvalidArgument (backbone mismatch), Unsupported, Backend.</exception>
        public static PatchCoreModel Load(string path, string backbonePath = null)
        {
            const string fn = "PatchCoreModel.Load";
            Errors.CheckString(path, fn, "path", false);
            Errors.CheckString(backbonePath, fn, "backbonePath", true);
            PatchCoreLibrary.EnsureCompatible();
            ModelHandle h;
            Errors.Check(NativeMethods.patchcore_model_load(path, backbonePath, out h));
            return new PatchCoreModel(h);
        }

        /// <summary>
        /// Loads a model from bytes written by <see cref="SaveToBytes"/> (backbone as
        /// <see cref="Load"/>, a recorded file name looked up in the current directory).
        /// </summary>
        public static PatchCoreModel LoadFromBytes(byte[] data, string backbonePath = null)
        {
            Errors.NotNull(data, "PatchCoreModel.LoadFromBytes", "data");
            return LoadFromBytes(data, 0, data.Length, backbonePath);
        }

        /// <summary>Loads a model from data[offset .. offset + count) written by <see cref="SaveToBytes"/>.</summary>
        public static unsafe PatchCoreModel LoadFromBytes(byte[] data, int offset, int count, string backbonePath = null)
        {
            const string fn = "PatchCoreModel.LoadFromBytes";
            Errors.NotNull(data, fn, "data");
            Errors.CheckRange(data.Length, offset, count, fn, "data");
            Errors.CheckString(backbonePath, fn, "backbonePath", true);
            PatchCoreLibrary.EnsureCompatible();
            ModelHandle h;
            fixed (byte* p = data)
            {
                Errors.Check(NativeMethods.patchcore_model_load_from_buffer(p + offset, (UIntPtr)count, backbonePath, out h));
            }
            return new PatchCoreModel(h);
        }

        /// <summary>
        /// Saves the fitted model atomically (the file is the old one or the complete new one).
        /// May run concurrently with predictions.
        /// </summary>
        /// <exception cref="PatchCoreException">InvalidState (not fitted), IO.</exception>
        public void Save(string path)
        {
            Errors.CheckString(path, "PatchCoreModel.Save", "path", false);
            Errors.Check(NativeMethods.patchcore_model_save(Handle, path));
        }

        /// <summary>Serialises the fitted model.</summary>
        /// <exception cref="PatchCoreException">InvalidState (not fitted).</exception>
        public unsafe byte[] SaveToBytes()
        {
            ModelHandle h = Handle;
            while (true)
            {
                UIntPtr needed;
                int status = NativeMethods.patchcore_model_save_to_buffer(h, null, UIntPtr.Zero, out needed);
                if (status != (int)PatchCoreStatus.BufferTooSmall)
                {
                    Errors.Check(status);
                }
                var buf = new byte[checked((int)needed.ToUInt64())];
                fixed (byte* p = buf)
                {
                    status = NativeMethods.patchcore_model_save_to_buffer(h, p, (UIntPtr)buf.Length, out needed);
                }
                if (status == 0)
                {
                    return needed.ToUInt64() == (ulong)buf.Length ? buf : Truncate(buf, (int)needed.ToUInt64());
                }
                if (status != (int)PatchCoreStatus.BufferTooSmall)
                {
                    Errors.Check(status);
                }
                // The model changed size between the two calls (a concurrent Fit): ask again.
            }
        }

        private static byte[] Truncate(byte[] buf, int n)
        {
            var r = new byte[n];
            Array.Copy(buf, r, n);
            return r;
        }

        // ------------------------------------------------------------- training

        /// <summary>
        /// Adds imageCount good training images stored one after another in
        /// pixels[offset ..] (image i at offset + i * layout.ImageBytes). Only their embeddings are
        /// kept. Call <see cref="Fit()"/> to build the memory bank.
        /// </summary>
        /// <exception cref="PatchCoreException">InvalidArgument, InvalidState (features-only model), Backend.</exception>
        public unsafe void AddImages(byte[] pixels, int offset, int imageCount, ImageLayout layout)
        {
            const string fn = "PatchCoreModel.AddImages";
            ModelHandle h = Handle;
            CheckPixels(pixels, offset, imageCount, layout, fn);
            fixed (byte* p = pixels)
            {
                AddImagesCore(h, p + offset, imageCount, layout);
            }
        }

        /// <summary>Adds one good training image occupying pixels from index 0.</summary>
        public void AddImage(byte[] pixels, ImageLayout layout)
        {
            AddImages(pixels, 0, 1, layout);
        }

        /// <summary>
        /// Adds imageCount good training images from unmanaged memory (read in place; image i at
        /// pixels + i * layout.ImageBytes). The caller guarantees layout.BytesFor(imageCount)
        /// readable bytes.
        /// </summary>
        public unsafe void AddImages(IntPtr pixels, int imageCount, ImageLayout layout)
        {
            ModelHandle h = Handle;
            CheckPointer(pixels, imageCount, layout, "PatchCoreModel.AddImages");
            AddImagesCore(h, (byte*)pixels, imageCount, layout);
        }

        private static unsafe void AddImagesCore(ModelHandle h, byte* p, int imageCount, ImageLayout layout)
        {
            Errors.Check(NativeMethods.patchcore_model_add_images(h, p, imageCount, layout.Width, layout.Height,
                layout.Stride, layout.Channels, (int)layout.Format));
        }

        /// <summary>Adds good training images from PNG or JPEG files.</summary>
        /// <exception cref="PatchCoreException">InvalidArgument, IO, Format (undecodable image), Backend.</exception>
        public unsafe void AddFiles(IList<string> paths)
        {
            ModelHandle h = Handle;
            using (var s = new Utf8StringArray(paths, "PatchCoreModel.AddFiles", "paths"))
            fixed (IntPtr* p = s.Pointers)
            {
                Errors.Check(NativeMethods.patchcore_model_add_files(h, p, (UIntPtr)s.Count));
            }
        }

        /// <summary>
        /// Adds host-computed feature maps of good images: one <see cref="FeatureMap"/> per model
        /// layer, all with the same N.
        /// </summary>
        /// <exception cref="PatchCoreException">InvalidArgument (count, shapes, NaN/Inf).</exception>
        public unsafe void AddFeatures(IList<FeatureMap> layers)
        {
            ModelHandle h = Handle;
            using (var pl = new PinnedLayers(layers, "PatchCoreModel.AddFeatures"))
            fixed (IntPtr* lp = pl.Pointers)
            fixed (long* sp = pl.Shapes)
            {
                Errors.Check(NativeMethods.patchcore_model_add_features(h, lp, sp, pl.Pointers.Length));
            }
        }

        /// <summary>Builds the memory bank (sampling, indexing) from everything added since the last fit.</summary>
        /// <exception cref="PatchCoreException">InvalidState (nothing added), InvalidArgument (empty coreset), Backend.</exception>
        public void Fit()
        {
            Errors.Check(NativeMethods.patchcore_model_fit(Handle));
        }

        /// <summary>Adds the images (as <see cref="AddImages(byte[],int,int,ImageLayout)"/>) and fits.</summary>
        public void Fit(byte[] pixels, int offset, int imageCount, ImageLayout layout)
        {
            AddImages(pixels, offset, imageCount, layout);
            Fit();
        }

        /// <summary>Adds the images (as <see cref="AddImages(IntPtr,int,ImageLayout)"/>) and fits.</summary>
        public void Fit(IntPtr pixels, int imageCount, ImageLayout layout)
        {
            AddImages(pixels, imageCount, layout);
            Fit();
        }

        /// <summary>Adds the image files and fits.</summary>
        public void FitFiles(IList<string> paths)
        {
            AddFiles(paths);
            Fit();
        }

        /// <summary>Adds the feature maps and fits.</summary>
        public void FitFeatures(IList<FeatureMap> layers)
        {
            AddFeatures(layers);
            Fit();
        }

        // ------------------------------------------------------------- inference

        /// <summary>Floats of one anomaly map (ImageSize * ImageSize).</summary>
        public int MapSize
        {
            get
            {
                int n = mapSize;
                if (n == 0)
                {
                    UIntPtr size;
                    Errors.Check(NativeMethods.patchcore_model_map_size(Handle, out size));
                    long side = GetInt(PatchCoreParameter.ImageSize);
                    if ((ulong)(side * side) != size.ToUInt64())
                    {
                        throw new PatchCoreException(PatchCoreStatus.Internal, string.Format(
                            "PatchCoreModel.MapSize: map size {0} is not imagesize {1} squared", size, side));
                    }
                    mapSide = (int)side;
                    n = mapSize = (int)size.ToUInt64();
                }
                return n;
            }
        }

        /// <summary>
        /// Scores imageCount images stored in pixels[offset ..] (layout as AddImages), with their
        /// anomaly maps unless withMaps is false.
        /// </summary>
        /// <exception cref="PatchCoreException">InvalidArgument, InvalidState (not fitted), Backend.</exception>
        public unsafe PatchCoreResult Predict(byte[] pixels, int offset, int imageCount, ImageLayout layout, bool withMaps = true)
        {
            const string fn = "PatchCoreModel.Predict";
            ModelHandle h = Handle;
            CheckPixels(pixels, offset, imageCount, layout, fn);
            PatchCoreResult r = NewResult(imageCount, withMaps);
            fixed (byte* p = pixels)
            {
                PredictCore(h, p + offset, imageCount, layout, r.Scores, 0, r.Maps, 0, fn);
            }
            return r;
        }

        /// <summary>Scores one image occupying pixels from index 0.</summary>
        public PatchCoreResult Predict(byte[] pixels, ImageLayout layout, bool withMaps = true)
        {
            return Predict(pixels, 0, 1, layout, withMaps);
        }

        /// <summary>Scores imageCount images in unmanaged memory, read in place (layout as AddImages).</summary>
        public unsafe PatchCoreResult Predict(IntPtr pixels, int imageCount, ImageLayout layout, bool withMaps = true)
        {
            const string fn = "PatchCoreModel.Predict";
            ModelHandle h = Handle;
            CheckPointer(pixels, imageCount, layout, fn);
            PatchCoreResult r = NewResult(imageCount, withMaps);
            PredictCore(h, (byte*)pixels, imageCount, layout, r.Scores, 0, r.Maps, 0, fn);
            return r;
        }

        /// <summary>
        /// Scores imageCount images into caller arrays, allocating nothing: imageCount scores at
        /// scores[scoresOffset ..] and, when maps is not null, imageCount * MapSize floats at
        /// maps[mapsOffset ..].
        /// </summary>
        public unsafe void Predict(byte[] pixels, int offset, int imageCount, ImageLayout layout,
            float[] scores, int scoresOffset, float[] maps, int mapsOffset)
        {
            const string fn = "PatchCoreModel.Predict";
            ModelHandle h = Handle;
            CheckPixels(pixels, offset, imageCount, layout, fn);
            fixed (byte* p = pixels)
            {
                PredictCore(h, p + offset, imageCount, layout, scores, scoresOffset, maps, mapsOffset, fn);
            }
        }

        /// <summary>Scores images in unmanaged memory into caller arrays (see the byte[] overload).</summary>
        public unsafe void Predict(IntPtr pixels, int imageCount, ImageLayout layout,
            float[] scores, int scoresOffset, float[] maps, int mapsOffset)
        {
            const string fn = "PatchCoreModel.Predict";
            ModelHandle h = Handle;
            CheckPointer(pixels, imageCount, layout, fn);
            PredictCore(h, (byte*)pixels, imageCount, layout, scores, scoresOffset, maps, mapsOffset, fn);
        }

        private unsafe void PredictCore(ModelHandle h, byte* pixels, int imageCount, ImageLayout layout,
            float[] scores, int scoresOffset, float[] maps, int mapsOffset, string fn)
        {
            Errors.NotNull(scores, fn, "scores");
            Errors.CheckRange(scores.Length, scoresOffset, imageCount, fn, "scores");
            long mapFloats = 0;
            if (maps != null)
            {
                mapFloats = (long)imageCount * MapSize;
                Errors.CheckRange(maps.Length, mapsOffset, mapFloats, fn, "maps");
            }
            fixed (float* s = scores)
            fixed (float* m = maps)
            {
                PredictInto(h, pixels, imageCount, layout, s + scoresOffset, m == null ? null : m + mapsOffset, mapFloats);
            }
        }

        /// <summary>The native predict on pinned, range-checked memory (maps null: scores only).</summary>
        private static unsafe void PredictInto(ModelHandle h, byte* pixels, int imageCount, ImageLayout layout,
            float* scores, float* maps, long mapFloats)
        {
            UIntPtr needed;
            Errors.Check(NativeMethods.patchcore_model_predict(h, pixels, imageCount, layout.Width, layout.Height,
                layout.Stride, layout.Channels, (int)layout.Format, scores, maps, (UIntPtr)mapFloats, out needed));
        }

        /// <summary>Scores PNG or JPEG files.</summary>
        /// <exception cref="PatchCoreException">InvalidArgument, IO, Format, InvalidState (not fitted), Backend.</exception>
        public unsafe PatchCoreResult PredictFiles(IList<string> paths, bool withMaps = true)
        {
            ModelHandle h = Handle;
            using (var s = new Utf8StringArray(paths, "PatchCoreModel.PredictFiles", "paths"))
            {
                PatchCoreResult r = NewResult(s.Count, withMaps);
                fixed (IntPtr* p = s.Pointers)
                fixed (float* sc = r.Scores)
                fixed (float* m = r.Maps)
                {
                    UIntPtr needed;
                    Errors.Check(NativeMethods.patchcore_model_predict_files(h, p, (UIntPtr)s.Count, sc, m,
                        (UIntPtr)(m == null ? 0 : r.Maps.Length), out needed));
                }
                return r;
            }
        }

        /// <summary>Scores host-computed feature maps (one per model layer, N images each).</summary>
        /// <exception cref="PatchCoreException">InvalidArgument (count, shapes, NaN/Inf), InvalidState (not fitted).</exception>
        public unsafe PatchCoreResult PredictFeatures(IList<FeatureMap> layers, bool withMaps = true)
        {
            ModelHandle h = Handle;
            using (var pl = new PinnedLayers(layers, "PatchCoreModel.PredictFeatures"))
            {
                PatchCoreResult r = NewResult(pl.ImageCount, withMaps);
                fixed (IntPtr* lp = pl.Pointers)
                fixed (long* sp = pl.Shapes)
                fixed (float* sc = r.Scores)
                fixed (float* m = r.Maps)
                {
                    UIntPtr needed;
                    Errors.Check(NativeMethods.patchcore_model_predict_features(h, lp, sp, pl.Pointers.Length, sc, m,
                        (UIntPtr)(m == null ? 0 : r.Maps.Length), out needed));
                }
                return r;
            }
        }

        private PatchCoreResult NewResult(int imageCount, bool withMaps)
        {
            if (!withMaps)
            {
                return new PatchCoreResult(new float[imageCount], null, 0, 0);
            }
            int size = MapSize;
            var maps = new float[Errors.Product("PatchCoreModel.Predict", "maps", imageCount, size)];
            return new PatchCoreResult(new float[imageCount], maps, mapSide, mapSide);
        }

        // ------------------------------------------------------------- thresholds

        /// <summary>Binary masks: maps[i] &gt; threshold ? 1 : 0. A NaN threshold means the calibrated one.</summary>
        /// <exception cref="PatchCoreException">InvalidState (NaN threshold on an uncalibrated model).</exception>
        public byte[] Segment(float[] maps, float threshold = float.NaN)
        {
            ThrowIfDisposed();
            Errors.NotNull(maps, "PatchCoreModel.Segment", "maps");
            var masks = new byte[maps.Length];
            Segment(maps, 0, maps.Length, masks, 0, threshold);
            return masks;
        }

        /// <summary>Writes count masks for maps[offset ..] into masks[masksOffset ..].</summary>
        public unsafe void Segment(float[] maps, int offset, int count, byte[] masks, int masksOffset, float threshold = float.NaN)
        {
            const string fn = "PatchCoreModel.Segment";
            ModelHandle h = Handle;
            Errors.NotNull(maps, fn, "maps");
            Errors.NotNull(masks, fn, "masks");
            Errors.CheckRange(maps.Length, offset, count, fn, "maps");
            Errors.CheckRange(masks.Length, masksOffset, count, fn, "masks");
            if (count == 0)
            {
                return;
            }
            fixed (float* m = maps)
            fixed (byte* o = masks)
            {
                Errors.Check(NativeMethods.patchcore_model_segment(h, m + offset, (UIntPtr)count, threshold, o + masksOffset));
            }
        }

        /// <summary>
        /// Calibrates and stores the image threshold from held-out good images
        /// (<see cref="CalibrationMethod.Quantile"/> or <see cref="CalibrationMethod.MeanStd"/>).
        /// </summary>
        /// <returns>the threshold</returns>
        public unsafe float Calibrate(byte[] pixels, int offset, int imageCount, ImageLayout layout,
            CalibrationMethod method, double param)
        {
            const string fn = "PatchCoreModel.Calibrate";
            ModelHandle h = Handle;
            CheckPixels(pixels, offset, imageCount, layout, fn);
            fixed (byte* p = pixels)
            {
                return CalibrateCore(h, p + offset, imageCount, layout, method, param);
            }
        }

        /// <summary>Calibrates from good images in unmanaged memory (see the byte[] overload).</summary>
        public unsafe float Calibrate(IntPtr pixels, int imageCount, ImageLayout layout, CalibrationMethod method, double param)
        {
            ModelHandle h = Handle;
            CheckPointer(pixels, imageCount, layout, "PatchCoreModel.Calibrate");
            return CalibrateCore(h, (byte*)pixels, imageCount, layout, method, param);
        }

        private static unsafe float CalibrateCore(ModelHandle h, byte* p, int imageCount, ImageLayout layout,
            CalibrationMethod method, double param)
        {
            float t;
            Errors.Check(NativeMethods.patchcore_model_calibrate(h, p, imageCount, layout.Width, layout.Height,
                layout.Stride, layout.Channels, (int)layout.Format, (int)method, param, out t));
            return t;
        }

        /// <summary>
        /// Calibrates and stores the threshold from image scores: Quantile / MeanStd use the
        /// scores labelled 0 (labels may be null: all good); F1 needs labels (0 good, 1 anomalous).
        /// </summary>
        /// <returns>the threshold</returns>
        public unsafe float CalibrateScores(float[] scores, int[] labels, CalibrationMethod method, double param)
        {
            const string fn = "PatchCoreModel.CalibrateScores";
            ModelHandle h = Handle;
            Errors.NotNull(scores, fn, "scores");
            if (labels != null && labels.Length != scores.Length)
            {
                throw Errors.Invalid(fn, string.Format("labels holds {0} values for {1} scores", labels.Length, scores.Length));
            }
            float t;
            fixed (float* s = scores)
            fixed (int* l = labels)
            {
                Errors.Check(NativeMethods.patchcore_model_calibrate_scores(h, s, l, (UIntPtr)scores.Length,
                    (int)method, param, out t));
            }
            return t;
        }

        /// <summary>
        /// Scores normalised to [0, 1] with the calibrated threshold at 0.5:
        /// clamp((s - threshold) / (max - min) + 0.5, 0, 1) over the calibration scores' range.
        /// </summary>
        /// <exception cref="PatchCoreException">InvalidState (not calibrated).</exception>
        public unsafe float[] NormalizeScores(float[] scores)
        {
            const string fn = "PatchCoreModel.NormalizeScores";
            ModelHandle h = Handle;
            Errors.NotNull(scores, fn, "scores");
            var result = new float[scores.Length];
            if (scores.Length == 0)
            {
                return result;
            }
            fixed (float* s = scores)
            fixed (float* o = result)
            {
                Errors.Check(NativeMethods.patchcore_model_normalize_scores(h, s, (UIntPtr)scores.Length, o));
            }
            return result;
        }

        /// <summary>The calibrated image threshold, NaN when the model has none.</summary>
        public float Threshold => (float)GetFloat(PatchCoreParameter.Threshold);

        // ------------------------------------------------------------- properties

        /// <summary>Rows of the memory bank (0 before fit).</summary>
        public long MemoryBankRows => GetInt(PatchCoreParameter.BankRows);

        /// <summary>Patch grid rows per image.</summary>
        public int GridHeight => (int)GetInt(PatchCoreParameter.GridHeight);

        /// <summary>Patch grid columns per image.</summary>
        public int GridWidth => (int)GetInt(PatchCoreParameter.GridWidth);

        /// <summary>Side of the centre crop and of the anomaly maps.</summary>
        public int ImageSize => (int)GetInt(PatchCoreParameter.ImageSize);

        /// <summary>Reads an integer setting or property.</summary>
        /// <exception cref="PatchCoreException">InvalidArgument (not an integer key of a model).</exception>
        public long GetInt(PatchCoreParameter key)
        {
            long v;
            Errors.Check(NativeMethods.patchcore_model_get_int(Handle, (int)key, out v));
            return v;
        }

        /// <summary>Reads a floating-point setting or property.</summary>
        /// <exception cref="PatchCoreException">InvalidArgument (not a floating-point key of a model).</exception>
        public double GetFloat(PatchCoreParameter key)
        {
            double v;
            Errors.Check(NativeMethods.patchcore_model_get_float(Handle, (int)key, out v));
            return v;
        }

        // ------------------------------------------------------------- helpers

        private void ThrowIfDisposed()
        {
            if (handle.IsClosed)
            {
                throw new ObjectDisposedException(nameof(PatchCoreModel));
            }
        }

        /// <summary>The native handle, or ObjectDisposedException.</summary>
        private ModelHandle Handle
        {
            get
            {
                ThrowIfDisposed();
                return handle;
            }
        }

        private static void CheckPixels(byte[] pixels, int offset, int imageCount, ImageLayout layout, string fn)
        {
            Errors.NotNull(pixels, fn, "pixels");
            Errors.Positive(imageCount, fn, "imageCount");
            layout.Check(fn);
            Errors.CheckRange(pixels.Length, offset, layout.BytesFor(imageCount), fn, "pixels");
        }

        private static void CheckPointer(IntPtr pixels, int imageCount, ImageLayout layout, string fn)
        {
            if (pixels == IntPtr.Zero)
            {
                throw Errors.Invalid(fn, "pixels is a null pointer");
            }
            Errors.Positive(imageCount, fn, "imageCount");
            layout.Check(fn);
        }
    }
}
