using System;
using System.Collections.Generic;

namespace PatchCore
{
    /// <summary>Stateless building blocks of the reference pipeline. Thread-safe.</summary>
    public static class PatchCoreOps
    {
        /// <summary>
        /// The post-backbone pipeline (PatchMaker, layer alignment, Preprocessing, Aggregator):
        /// per-layer feature maps to patch embeddings [N * gridH * gridW, targetDimension],
        /// image-major then row-major on the first layer's grid.
        /// </summary>
        /// <exception cref="PatchCoreException">InvalidArgument (shapes, dimensions, NaN/Inf).</exception>
        public static unsafe float[] Embed(IList<FeatureMap> layers, int patchSize, int pretrainDimension, int targetDimension)
        {
            const string fn = "PatchCoreOps.Embed";
            PatchCoreLibrary.EnsureCompatible();
            using (var pl = new PinnedLayers(layers, fn))
            fixed (IntPtr* lp = pl.Pointers)
            fixed (long* sp = pl.Shapes)
            {
                UIntPtr needed;
                int status = NativeMethods.patchcore_embed(lp, sp, pl.Pointers.Length, patchSize, pretrainDimension,
                    targetDimension, null, UIntPtr.Zero, out needed);
                if (status != (int)PatchCoreStatus.BufferTooSmall)
                {
                    Errors.Check(status);
                }
                ulong n = needed.ToUInt64();
                if (n > int.MaxValue)
                {
                    throw Errors.Invalid(fn, "the embeddings (" + n + " floats) are larger than a .NET array");
                }
                var output = new float[n];
                fixed (float* o = output)
                {
                    Errors.Check(NativeMethods.patchcore_embed(lp, sp, pl.Pointers.Length, patchSize, pretrainDimension,
                        targetDimension, o, (UIntPtr)output.Length, out needed));
                }
                return output;
            }
        }

        /// <summary>
        /// PyTorch's adaptive_avg_pool1d on the rows of input [rows, inLength] (exactly
        /// rows * inLength floats): output [rows, outLength], window i =
        /// [floor(i*inLength/outLength), ceil((i+1)*inLength/outLength)).
        /// </summary>
        /// <exception cref="PatchCoreException">InvalidArgument (sizes, NaN/Inf).</exception>
        public static unsafe float[] AdaptiveAvgPool1d(float[] input, int rows, int inLength, int outLength)
        {
            const string fn = "PatchCoreOps.AdaptiveAvgPool1d";
            Errors.NotNull(input, fn, "input");
            Errors.Positive(rows, fn, "rows");
            Errors.Positive(inLength, fn, "inLength");
            Errors.Positive(outLength, fn, "outLength");
            if (input.Length != (long)rows * inLength)
            {
                throw Errors.Invalid(fn, string.Format("input holds {0} floats, not rows {1} * inLength {2}",
                    input.Length, rows, inLength));
            }
            PatchCoreLibrary.EnsureCompatible();
            var output = new float[Errors.Product(fn, "output", rows, outLength)];
            fixed (float* i = input)
            fixed (float* o = output)
            {
                Errors.Check(NativeMethods.patchcore_adaptive_avg_pool1d(i, rows, inLength, outLength, o));
            }
            return output;
        }
    }
}
