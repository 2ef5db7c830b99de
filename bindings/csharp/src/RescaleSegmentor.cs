using System;

namespace PatchCore
{
    /// <summary>
    /// The reference's RescaleSegmentor: patch scores [n, h, w] are upsampled bilinearly to the
    /// target size and smoothed with a Gaussian. Convert may run concurrently.
    /// </summary>
    public sealed partial class RescaleSegmentor : IDisposable
    {
        private readonly SegmentorHandle handle;

        /// <summary>
        /// Creates a segmentor producing targetHeight x targetWidth maps smoothed with sigma in
        /// [0, 1000] (0 means the reference's 4, below 0.125 no smoothing).
        /// </summary>
        /// <exception cref="PatchCoreException">InvalidArgument (non-positive size, negative or NaN sigma).</exception>
        public RescaleSegmentor(int targetHeight, int targetWidth, double sigma = 4)
        {
            PatchCoreLibrary.EnsureCompatible();
            Errors.Check(NativeMethods.patchcore_segmentor_create(targetHeight, targetWidth, sigma, out handle));
            TargetHeight = targetHeight;
            TargetWidth = targetWidth;
        }

        /// <summary>Rows of the produced maps.</summary>
        public int TargetHeight { get; }

        /// <summary>Columns of the produced maps.</summary>
        public int TargetWidth { get; }

        /// <summary>True after <see cref="Dispose"/>.</summary>
        public bool IsDisposed => handle.IsClosed;

        /// <summary>Frees the native segmentor. Idempotent.</summary>
        public void Dispose()
        {
            handle.Dispose();
        }

        /// <summary>Patch scores [n, h, w] (exactly n*h*w floats) to segmentations [n, TargetHeight, TargetWidth].</summary>
        /// <exception cref="PatchCoreException">InvalidArgument (sizes, NaN/Inf).</exception>
        public float[] ConvertToSegmentation(float[] patchScores, int n, int h, int w)
        {
            const string fn = "RescaleSegmentor.ConvertToSegmentation";
            CheckDisposed();
            Errors.NotNull(patchScores, fn, "patchScores");
            Errors.Positive(n, fn, "n");
            if (patchScores.Length != (long)n * h * w)
            {
                throw Errors.Invalid(fn, string.Format("patchScores holds {0} floats, not {1}x{2}x{3}",
                    patchScores.Length, n, h, w));
            }
            var output = new float[Errors.Product(fn, "segmentations", n, TargetHeight, TargetWidth)];
            ConvertToSegmentation(patchScores, 0, n, h, w, output, 0);
            return output;
        }

        /// <summary>
        /// Patch scores [n, h, w] at patchScores[offset ..] to n * TargetHeight * TargetWidth floats
        /// at output[outputOffset ..].
        /// </summary>
        public unsafe void ConvertToSegmentation(float[] patchScores, int offset, int n, int h, int w,
            float[] output, int outputOffset)
        {
            const string fn = "RescaleSegmentor.ConvertToSegmentation";
            CheckDisposed();
            Errors.NotNull(patchScores, fn, "patchScores");
            Errors.NotNull(output, fn, "output");
            Errors.CheckRange(patchScores.Length, offset, (long)n * h * w, fn, "patchScores");
            long needed = (long)n * TargetHeight * TargetWidth;
            Errors.CheckRange(output.Length, outputOffset, needed, fn, "output");
            fixed (float* p = patchScores)
            fixed (float* o = output)
            {
                UIntPtr required;
                Errors.Check(NativeMethods.patchcore_segmentor_convert(handle, p + offset, n, h, w, o + outputOffset,
                    (UIntPtr)(output.Length - outputOffset), out required));
            }
        }

        private void CheckDisposed()
        {
            if (handle.IsClosed)
            {
                throw new ObjectDisposedException(nameof(RescaleSegmentor));
            }
        }
    }
}
