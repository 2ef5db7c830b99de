using System;
using System.Collections.Generic;
using System.Runtime.InteropServices;

namespace PatchCore
{
    /// <summary>The shape {Channels, Height, Width} of one layer's feature map for one image.</summary>
    public struct FeatureShape
    {
        /// <summary>Creates a shape.</summary>
        public FeatureShape(int channels, int height, int width)
        {
            Channels = channels;
            Height = height;
            Width = width;
        }

        /// <summary>Channels.</summary>
        public int Channels { get; }

        /// <summary>Rows.</summary>
        public int Height { get; }

        /// <summary>Columns.</summary>
        public int Width { get; }

        /// <inheritdoc/>
        public override string ToString()
        {
            return Channels + "x" + Height + "x" + Width;
        }
    }

    /// <summary>
    /// The reference's NetworkFeatureAggregator: an ONNX backbone and the layers extracted from
    /// it. Forward may run concurrently.
    /// </summary>
    public sealed class NetworkFeatureAggregator : IDisposable
    {
        private readonly AggregatorHandle handle;
        private readonly string[] layers;

        /// <summary>Loads the backbone from an ONNX file.</summary>
        /// <param name="onnxPath">the ONNX file</param>
        /// <param name="layers">graph outputs or intermediate tensor names to extract</param>
        /// <param name="device">"cpu", "cuda" or "cuda:N" (null = "cpu")</param>
        /// <exception cref="PatchCoreException">InvalidArgument (unknown layer, bad device), IO, Format, Unsupported, Backend.</exception>
        public NetworkFeatureAggregator(string onnxPath, IList<string> layers, string device = null)
        {
            const string fn = "NetworkFeatureAggregator";
            Errors.CheckString(onnxPath, fn, "onnxPath", false);
            this.layers = CopyLayers(layers, fn);
            handle = Create(onnxPath, null, this.layers, device, fn);
        }

        /// <summary>Loads the backbone from ONNX bytes (copied).</summary>
        public NetworkFeatureAggregator(byte[] onnxBytes, IList<string> layers, string device = null)
        {
            const string fn = "NetworkFeatureAggregator";
            Errors.NotNull(onnxBytes, fn, "onnxBytes");
            this.layers = CopyLayers(layers, fn);
            handle = Create(null, onnxBytes, this.layers, device, fn);
        }

        private static string[] CopyLayers(IList<string> layers, string fn)
        {
            Errors.NotNull(layers, fn, "layers");
            var copy = new string[layers.Count];
            layers.CopyTo(copy, 0);
            return copy;
        }

        private static unsafe AggregatorHandle Create(string path, byte[] bytes, string[] layers, string device, string fn)
        {
            Errors.CheckString(device, fn, "device", true);
            PatchCoreLibrary.EnsureCompatible();
            AggregatorHandle h;
            using (var names = new Utf8StringArray(layers, fn, "layers"))
            fixed (IntPtr* l = names.Pointers)
            fixed (byte* b = bytes)
            {
                Errors.Check(NativeMethods.patchcore_aggregator_create(path, b,
                    (UIntPtr)(bytes == null ? 0 : bytes.Length), l, (UIntPtr)names.Count, device, out h));
            }
            return h;
        }

        /// <summary>The extracted layers, in the order given.</summary>
        public IReadOnlyList<string> Layers => Array.AsReadOnly(layers);

        /// <summary>True after <see cref="Dispose"/>.</summary>
        public bool IsDisposed => handle.IsClosed;

        /// <summary>Frees the native aggregator. Idempotent.</summary>
        public void Dispose()
        {
            handle.Dispose();
        }

        /// <summary>Each layer's output shape for one input of channels x height x width (the reference's feature_dimensions).</summary>
        /// <exception cref="PatchCoreException">InvalidArgument, Backend.</exception>
        public unsafe FeatureShape[] FeatureDimensions(int channels, int height, int width)
        {
            AggregatorHandle h = Handle;
            var shapes = new long[3 * layers.Length];
            fixed (long* p = shapes)
            {
                UIntPtr needed;
                Errors.Check(NativeMethods.patchcore_aggregator_feature_shapes(h, channels, height, width, p,
                    (UIntPtr)shapes.Length, out needed));
            }
            var result = new FeatureShape[layers.Length];
            for (int i = 0; i < result.Length; i++)
            {
                result[i] = new FeatureShape((int)shapes[3 * i], (int)shapes[3 * i + 1], (int)shapes[3 * i + 2]);
            }
            return result;
        }

        /// <summary>The checks both Forward overloads make of their image arguments.</summary>
        private static void CheckImages(string fn, float[] images, int n, int channels, int height, int width)
        {
            Errors.NotNull(images, fn, "images");
            Errors.Positive(n, fn, "n");
            if (images.Length != (long)n * channels * height * width)
            {
                throw Errors.Invalid(fn, string.Format("images holds {0} floats, not {1}x{2}x{3}x{4}",
                    images.Length, n, channels, height, width));
            }
        }

        /// <summary>
        /// Runs the backbone on normalised images [n, channels, height, width] (float32 NCHW,
        /// exactly n*channels*height*width floats) and returns layer layerIndex's output.
        /// </summary>
        /// <exception cref="PatchCoreException">InvalidArgument (sizes, layer index, NaN/Inf), Backend.</exception>
        public unsafe FeatureMap Forward(float[] images, int n, int channels, int height, int width, int layerIndex)
        {
            const string fn = "NetworkFeatureAggregator.Forward";
            AggregatorHandle h = Handle;
            CheckImages(fn, images, n, channels, height, width);
            if (layerIndex < 0 || layerIndex >= layers.Length)
            {
                throw Errors.Invalid(fn, string.Format("layerIndex {0} is outside [0, {1})", layerIndex, layers.Length));
            }
            FeatureShape s = FeatureDimensions(channels, height, width)[layerIndex];
            var output = new float[Errors.Product(fn, "output", n, s.Channels, s.Height, s.Width)];
            fixed (float* x = images)
            fixed (float* o = output)
            {
                UIntPtr needed;
                Errors.Check(NativeMethods.patchcore_aggregator_forward(h, x, n, channels, height, width, layerIndex,
                    o, (UIntPtr)output.Length, out needed));
            }
            return new FeatureMap(output, n, s.Channels, s.Height, s.Width);
        }

        /// <summary>
        /// Every layer's output for images [n, channels, height, width], in layer order: the input
        /// of <see cref="PatchCoreModel.AddFeatures"/>. The backbone runs once for all layers.
        /// </summary>
        /// <exception cref="PatchCoreException">InvalidArgument (sizes, NaN/Inf), Backend.</exception>
        public unsafe FeatureMap[] Forward(float[] images, int n, int channels, int height, int width)
        {
            const string fn = "NetworkFeatureAggregator.Forward";
            AggregatorHandle h = Handle;
            CheckImages(fn, images, n, channels, height, width);
            FeatureShape[] shapes = FeatureDimensions(channels, height, width);
            var outputs = new float[shapes.Length][];
            var handles = new GCHandle[shapes.Length];
            float** ptrs = stackalloc float*[shapes.Length];
            UIntPtr* caps = stackalloc UIntPtr[shapes.Length];
            try
            {
                for (int i = 0; i < shapes.Length; i++)
                {
                    FeatureShape s = shapes[i];
                    outputs[i] = new float[Errors.Product(fn, "output", n, s.Channels, s.Height, s.Width)];
                    handles[i] = GCHandle.Alloc(outputs[i], GCHandleType.Pinned);
                    ptrs[i] = (float*)handles[i].AddrOfPinnedObject();
                    caps[i] = (UIntPtr)outputs[i].Length;
                }
                fixed (float* x = images)
                {
                    Errors.Check(NativeMethods.patchcore_aggregator_forward_all(h, x, n, channels, height, width,
                        ptrs, caps, (UIntPtr)shapes.Length, null));
                }
            }
            finally
            {
                foreach (GCHandle g in handles)
                {
                    if (g.IsAllocated)
                    {
                        g.Free();
                    }
                }
            }
            var maps = new FeatureMap[shapes.Length];
            for (int i = 0; i < maps.Length; i++)
            {
                FeatureShape s = shapes[i];
                maps[i] = new FeatureMap(outputs[i], n, s.Channels, s.Height, s.Width);
            }
            return maps;
        }

        private AggregatorHandle Handle
        {
            get
            {
                if (handle.IsClosed)
                {
                    throw new ObjectDisposedException(nameof(NetworkFeatureAggregator));
                }
                return handle;
            }
        }
    }
}
