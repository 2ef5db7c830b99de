// Span overloads, compiled for modern .NET (NETCOREAPP) or where Span<T> is available and
// PATCHCORE_SPAN is defined (netstandard2.0 with the System.Memory package, Mono 6+).
// Each checks lengths, then pins with `fixed` for the duration of the call only.
#if NETCOREAPP || PATCHCORE_SPAN
using System;
using System.Runtime.InteropServices;

namespace PatchCore
{
    public sealed partial class PatchCoreModel
    {
        /// <summary>Loads a model from bytes written by <see cref="SaveToBytes"/>.</summary>
        public static unsafe PatchCoreModel LoadFromBytes(ReadOnlySpan<byte> data, string backbonePath = null)
        {
            Errors.CheckString(backbonePath, "PatchCoreModel.LoadFromBytes", "backbonePath", true);
            PatchCoreLibrary.EnsureCompatible();
            ModelHandle h;
            fixed (byte* p = &MemoryMarshal.GetReference(data))
            {
                Errors.Check(NativeMethods.patchcore_model_load_from_buffer(p, (UIntPtr)data.Length, backbonePath, out h));
            }
            return new PatchCoreModel(h);
        }

        /// <summary>Adds imageCount good training images stored one after another in pixels.</summary>
        public unsafe void AddImages(ReadOnlySpan<byte> pixels, int imageCount, ImageLayout layout)
        {
            const string fn = "PatchCoreModel.AddImages";
            ModelHandle h = Handle;
            CheckSpan(pixels.Length, imageCount, layout, fn);
            fixed (byte* p = &MemoryMarshal.GetReference(pixels))
            {
                AddImagesCore(h, p, imageCount, layout);
            }
        }

        /// <summary>
        /// Scores imageCount images into scores (imageCount floats) and, unless maps is empty,
        /// their anomaly maps (imageCount * MapSize floats).
        /// </summary>
        public unsafe void Predict(ReadOnlySpan<byte> pixels, int imageCount, ImageLayout layout,
            Span<float> scores, Span<float> maps)
        {
            const string fn = "PatchCoreModel.Predict";
            ModelHandle h = Handle;
            CheckSpan(pixels.Length, imageCount, layout, fn);
            Errors.CheckRange(scores.Length, 0, imageCount, fn, "scores");
            long mapFloats = 0;
            if (!maps.IsEmpty)
            {
                mapFloats = (long)imageCount * MapSize;
                Errors.CheckRange(maps.Length, 0, mapFloats, fn, "maps");
            }
            fixed (byte* p = &MemoryMarshal.GetReference(pixels))
            fixed (float* s = &MemoryMarshal.GetReference(scores))
            fixed (float* m = &MemoryMarshal.GetReference(maps))
            {
                PredictInto(h, p, imageCount, layout, s, maps.IsEmpty ? null : m, mapFloats);
            }
        }

        /// <summary>Calibrates the threshold from good images stored one after another in pixels.</summary>
        public unsafe float Calibrate(ReadOnlySpan<byte> pixels, int imageCount, ImageLayout layout,
            CalibrationMethod method, double param)
        {
            const string fn = "PatchCoreModel.Calibrate";
            ModelHandle h = Handle;
            CheckSpan(pixels.Length, imageCount, layout, fn);
            fixed (byte* p = &MemoryMarshal.GetReference(pixels))
            {
                return CalibrateCore(h, p, imageCount, layout, method, param);
            }
        }

        /// <summary>Writes masks[i] = maps[i] &gt; threshold ? 1 : 0 (NaN threshold: the calibrated one).</summary>
        public unsafe void Segment(ReadOnlySpan<float> maps, Span<byte> masks, float threshold = float.NaN)
        {
            const string fn = "PatchCoreModel.Segment";
            ModelHandle h = Handle;
            Errors.CheckRange(masks.Length, 0, maps.Length, fn, "masks");
            if (maps.IsEmpty)
            {
                return;
            }
            fixed (float* m = &MemoryMarshal.GetReference(maps))
            fixed (byte* o = &MemoryMarshal.GetReference(masks))
            {
                Errors.Check(NativeMethods.patchcore_model_segment(h, m, (UIntPtr)maps.Length, threshold, o));
            }
        }

        /// <summary>Calibrates the threshold from scores (labels empty: all good; see the array overload).</summary>
        public unsafe float CalibrateScores(ReadOnlySpan<float> scores, ReadOnlySpan<int> labels,
            CalibrationMethod method, double param)
        {
            const string fn = "PatchCoreModel.CalibrateScores";
            ModelHandle h = Handle;
            if (!labels.IsEmpty && labels.Length != scores.Length)
            {
                throw Errors.Invalid(fn, string.Format("labels holds {0} values for {1} scores", labels.Length, scores.Length));
            }
            float t;
            fixed (float* s = &MemoryMarshal.GetReference(scores))
            fixed (int* l = &MemoryMarshal.GetReference(labels))
            {
                Errors.Check(NativeMethods.patchcore_model_calibrate_scores(h, s, labels.IsEmpty ? null : l,
                    (UIntPtr)scores.Length, (int)method, param, out t));
            }
            return t;
        }

        /// <summary>Writes the normalised scores (see the array overload) into normalized.</summary>
        public unsafe void NormalizeScores(ReadOnlySpan<float> scores, Span<float> normalized)
        {
            const string fn = "PatchCoreModel.NormalizeScores";
            ModelHandle h = Handle;
            Errors.CheckRange(normalized.Length, 0, scores.Length, fn, "normalized");
            if (scores.IsEmpty)
            {
                return;
            }
            fixed (float* s = &MemoryMarshal.GetReference(scores))
            fixed (float* o = &MemoryMarshal.GetReference(normalized))
            {
                Errors.Check(NativeMethods.patchcore_model_normalize_scores(h, s, (UIntPtr)scores.Length, o));
            }
        }

        private static void CheckSpan(int length, int imageCount, ImageLayout layout, string fn)
        {
            Errors.Positive(imageCount, fn, "imageCount");
            layout.Check(fn);
            Errors.CheckRange(length, 0, layout.BytesFor(imageCount), fn, "pixels");
        }
    }

    public sealed partial class NearestNeighbourScorer
    {
        /// <summary>Fits on features [rows, dim] (at least rows * dim floats; copied).</summary>
        public unsafe void Fit(ReadOnlySpan<float> features, int rows, int dim)
        {
            const string fn = "NearestNeighbourScorer.Fit";
            ScorerHandle h = Handle;
            Errors.CheckRange(features.Length, 0, (long)rows * dim, fn, "features");
            fixed (float* p = &MemoryMarshal.GetReference(features))
            {
                Errors.Check(NativeMethods.patchcore_scorer_fit(h, p, rows, dim));
            }
        }

        /// <summary>
        /// Scores queries [rows, dim] into scores (rows floats) and, unless empty, distances and
        /// indices (rows * k each).
        /// </summary>
        public unsafe void Predict(ReadOnlySpan<float> queries, int rows, int dim, Span<float> scores,
            Span<float> distances, Span<long> indices)
        {
            const string fn = "NearestNeighbourScorer.Predict";
            ScorerHandle h = Handle;
            Errors.CheckRange(queries.Length, 0, (long)rows * dim, fn, "queries");
            Errors.CheckRange(scores.Length, 0, rows, fn, "scores");
            long neighbours = (long)rows * NumNearestNeighbours;
            if (!distances.IsEmpty)
            {
                Errors.CheckRange(distances.Length, 0, neighbours, fn, "distances");
            }
            if (!indices.IsEmpty)
            {
                Errors.CheckRange(indices.Length, 0, neighbours, fn, "indices");
            }
            fixed (float* q = &MemoryMarshal.GetReference(queries))
            fixed (float* s = &MemoryMarshal.GetReference(scores))
            fixed (float* d = &MemoryMarshal.GetReference(distances))
            fixed (long* i = &MemoryMarshal.GetReference(indices))
            {
                Errors.Check(NativeMethods.patchcore_scorer_predict(h, q, rows, dim, s,
                    distances.IsEmpty ? null : d, indices.IsEmpty ? null : i));
            }
        }
    }

    public sealed partial class RescaleSegmentor
    {
        /// <summary>Patch scores [n, h, w] to n * TargetHeight * TargetWidth floats in output.</summary>
        public unsafe void ConvertToSegmentation(ReadOnlySpan<float> patchScores, int n, int h, int w, Span<float> output)
        {
            const string fn = "RescaleSegmentor.ConvertToSegmentation";
            CheckDisposed();
            Errors.CheckRange(patchScores.Length, 0, (long)n * h * w, fn, "patchScores");
            Errors.CheckRange(output.Length, 0, (long)n * TargetHeight * TargetWidth, fn, "output");
            fixed (float* p = &MemoryMarshal.GetReference(patchScores))
            fixed (float* o = &MemoryMarshal.GetReference(output))
            {
                UIntPtr required;
                Errors.Check(NativeMethods.patchcore_segmentor_convert(handle, p, n, h, w, o,
                    (UIntPtr)output.Length, out required));
            }
        }
    }
}
#endif
