using System;
using System.Collections.Generic;
using System.Runtime.InteropServices;
using System.Text;

namespace PatchCore
{
    /// <summary>Channel order of 3- and 4-channel pixels (1-channel images are replicated).</summary>
    public enum PixelFormat
    {
        /// <summary>Red, green, blue (, alpha) in memory order.</summary>
        Rgb = 0,
        /// <summary>Blue, green, red (, alpha) in memory order: System.Drawing, OpenCV, most cameras.</summary>
        Bgr = 1,
    }

    /// <summary>
    /// Describes 8-bit interleaved images (rows of Width * Channels bytes, Stride bytes apart)
    /// as an HMI holds them: a camera frame, a locked System.Drawing Bitmap (Format24bppRgb is
    /// 3-channel BGR, Format32bppArgb is 4-channel BGR with alpha), an OpenCV Mat. Several
    /// images in one buffer follow each other every Height * Stride bytes.
    /// </summary>
    public struct ImageLayout
    {
        /// <summary>Describes images of width x height pixels with channels interleaved bytes per pixel.</summary>
        /// <param name="width">pixels per row</param>
        /// <param name="height">rows</param>
        /// <param name="channels">1 (gray), 3 or 4 (alpha ignored)</param>
        /// <param name="format">channel order of colour images</param>
        /// <param name="stride">bytes from one row to the next; 0 means packed rows (width * channels)</param>
        public ImageLayout(int width, int height, int channels, PixelFormat format, int stride = 0)
        {
            Width = width;
            Height = height;
            Channels = channels;
            Format = format;
            Stride = stride == 0 ? width * channels : stride;
        }

        /// <summary>Pixels per row.</summary>
        public int Width { get; }

        /// <summary>Rows per image.</summary>
        public int Height { get; }

        /// <summary>Bytes per pixel: 1, 3 or 4.</summary>
        public int Channels { get; }

        /// <summary>Channel order of colour images.</summary>
        public PixelFormat Format { get; }

        /// <summary>Bytes from the start of one row to the start of the next (at least Width * Channels).</summary>
        public int Stride { get; }

        /// <summary>Bytes from the start of one image to the start of the next: Height * Stride.</summary>
        public long ImageBytes => (long)Height * Stride;

        /// <summary>
        /// Bytes the library reads for count consecutive images: every row but the last at full
        /// stride, the last row Width * Channels bytes. A region of interest inside a larger frame
        /// therefore fits as long as its own pixels do.
        /// </summary>
        public long BytesFor(int count)
        {
            long rows = (long)count * Height;
            return rows <= 0 ? 0 : (rows - 1) * Stride + (long)Width * Channels;
        }

        internal void Check(string function)
        {
            if (Width <= 0 || Height <= 0)
            {
                throw Errors.Invalid(function, string.Format("image size {0}x{1} is not positive", Width, Height));
            }
            if (Channels != 1 && Channels != 3 && Channels != 4)
            {
                throw Errors.Invalid(function, "channels must be 1, 3 or 4, got " + Channels);
            }
            if (Stride < (long)Width * Channels)
            {
                throw Errors.Invalid(function, string.Format(
                    "stride {0} is less than width {1} * channels {2}", Stride, Width, Channels));
            }
        }
    }

    /// <summary>
    /// One layer's feature maps for N images, float32 NCHW in row-major order: a managed
    /// array (with an offset) or unmanaged memory such as an ONNX Runtime output tensor.
    /// The data is borrowed: it is read during each call that receives the map, never kept.
    /// </summary>
    public sealed class FeatureMap
    {
        /// <summary>Feature maps occupying all of <paramref name="data"/> (length N*C*H*W).</summary>
        public FeatureMap(float[] data, int n, int channels, int height, int width)
        {
            const string fn = "FeatureMap";
            Errors.NotNull(data, fn, "data");
            SetShape(n, channels, height, width);
            if (data.Length != Length)
            {
                throw Errors.Invalid(fn, string.Format("data holds {0} floats, shape {1}x{2}x{3}x{4} needs {5}",
                    data.Length, n, channels, height, width, Length));
            }
            Data = data;
        }

        /// <summary>Feature maps stored in data[offset .. offset + N*C*H*W).</summary>
        public FeatureMap(float[] data, int offset, int n, int channels, int height, int width)
        {
            const string fn = "FeatureMap";
            Errors.NotNull(data, fn, "data");
            SetShape(n, channels, height, width);
            Errors.CheckRange(data.Length, offset, Length, fn, "data");
            Data = data;
            Offset = offset;
        }

        /// <summary>Feature maps in unmanaged memory holding N*C*H*W floats, valid during each call using this map.</summary>
        public FeatureMap(IntPtr data, int n, int channels, int height, int width)
        {
            const string fn = "FeatureMap";
            if (data == IntPtr.Zero)
            {
                throw Errors.Invalid(fn, "data is a null pointer");
            }
            SetShape(n, channels, height, width);
            Pointer = data;
        }

        /// <summary>The managed storage, or null for unmanaged memory.</summary>
        public float[] Data { get; }

        /// <summary>Index of the first float in <see cref="Data"/>.</summary>
        public int Offset { get; }

        /// <summary>The unmanaged storage, or IntPtr.Zero for a managed array.</summary>
        public IntPtr Pointer { get; }

        /// <summary>Number of images.</summary>
        public int N { get; private set; }

        /// <summary>Channels.</summary>
        public int Channels { get; private set; }

        /// <summary>Rows.</summary>
        public int Height { get; private set; }

        /// <summary>Columns.</summary>
        public int Width { get; private set; }

        /// <summary>N * Channels * Height * Width.</summary>
        public int Length { get; private set; }

        private void SetShape(int n, int channels, int height, int width)
        {
            const string fn = "FeatureMap";
            Errors.Positive(n, fn, "n");
            Errors.Positive(channels, fn, "channels");
            Errors.Positive(height, fn, "height");
            Errors.Positive(width, fn, "width");
            Length = Errors.Product(fn, "feature map", n, channels, height, width);
            N = n;
            Channels = channels;
            Height = height;
            Width = width;
        }
    }

    /// <summary>
    /// Pins the managed arrays of a list of feature maps and lays out the pointer and shape
    /// arrays the C API takes (const float* const* layers, int64_t shapes[4 * n]).
    /// Dispose unpins.
    /// </summary>
    internal sealed class PinnedLayers : IDisposable
    {
        private readonly GCHandle[] pins;

        internal PinnedLayers(IList<FeatureMap> layers, string function)
        {
            Errors.NotNull(layers, function, "layers");
            if (layers.Count == 0)
            {
                throw Errors.Invalid(function, "layers is empty");
            }
            Pointers = new IntPtr[layers.Count];
            Shapes = new long[4 * layers.Count];
            pins = new GCHandle[layers.Count];
            try
            {
                for (int i = 0; i < layers.Count; i++)
                {
                    FeatureMap m = layers[i];
                    if (m == null)
                    {
                        throw Errors.Invalid(function, "layers[" + i + "] is null");
                    }
                    if (m.Data != null)
                    {
                        pins[i] = GCHandle.Alloc(m.Data, GCHandleType.Pinned);
                        Pointers[i] = pins[i].AddrOfPinnedObject() + m.Offset * sizeof(float);
                    }
                    else
                    {
                        Pointers[i] = m.Pointer;
                    }
                    Shapes[4 * i] = m.N;
                    Shapes[4 * i + 1] = m.Channels;
                    Shapes[4 * i + 2] = m.Height;
                    Shapes[4 * i + 3] = m.Width;
                }
                ImageCount = layers[0].N;
            }
            catch
            {
                Dispose();
                throw;
            }
        }

        /// <summary>One data pointer per layer.</summary>
        internal IntPtr[] Pointers { get; }

        /// <summary>{N, C, H, W} per layer.</summary>
        internal long[] Shapes { get; }

        /// <summary>N of the first layer.</summary>
        internal int ImageCount { get; }

        public void Dispose()
        {
            for (int i = 0; i < pins.Length; i++)
            {
                if (pins[i].IsAllocated)
                {
                    pins[i].Free();
                }
            }
        }
    }

    /// <summary>
    /// NUL-terminated UTF-8 copies of strings in one pinned buffer, with the pointer array a
    /// const char* const* parameter takes. Dispose unpins.
    /// </summary>
    internal sealed class Utf8StringArray : IDisposable
    {
        private GCHandle pin;

        internal Utf8StringArray(IList<string> values, string function, string name)
        {
            Errors.NotNull(values, function, name);
            if (values.Count == 0)
            {
                throw Errors.Invalid(function, name + " is empty");
            }
            var offsets = new int[values.Count];
            int total = 0;
            for (int i = 0; i < values.Count; i++)
            {
                Errors.CheckString(values[i], function, name + "[" + i + "]", false);
                offsets[i] = total;
                total = checked(total + Encoding.UTF8.GetByteCount(values[i]) + 1);
            }
            var buffer = new byte[total];
            for (int i = 0; i < values.Count; i++)
            {
                Encoding.UTF8.GetBytes(values[i], 0, values[i].Length, buffer, offsets[i]);
            }
            pin = GCHandle.Alloc(buffer, GCHandleType.Pinned);
            IntPtr start = pin.AddrOfPinnedObject();
            Pointers = new IntPtr[values.Count];
            for (int i = 0; i < values.Count; i++)
            {
                Pointers[i] = start + offsets[i];
            }
        }

        /// <summary>One pointer per string.</summary>
        internal IntPtr[] Pointers { get; }

        /// <summary>Number of strings.</summary>
        internal int Count => Pointers.Length;

        public void Dispose()
        {
            if (pin.IsAllocated)
            {
                pin.Free();
            }
        }
    }
}
