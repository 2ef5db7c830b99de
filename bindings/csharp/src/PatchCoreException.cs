using System;
using System.Text;

namespace PatchCore
{
    /// <summary>The library's status codes (PATCHCORE_OK / PATCHCORE_ERR_* in patchcore.h).</summary>
    public enum PatchCoreStatus
    {
        /// <summary>Success.</summary>
        Ok = 0,
        /// <summary>A parameter is null, out of range, of the wrong size, or contains NaN/Inf.</summary>
        InvalidArgument = 1,
        /// <summary>The native handle is unknown or already freed.</summary>
        InvalidHandle = 2,
        /// <summary>The object is in the wrong state (predict before fit, use after an internal error).</summary>
        InvalidState = 3,
        /// <summary>An output buffer was too small (the binding sizes its buffers, so this means a bug).</summary>
        BufferTooSmall = 4,
        /// <summary>The operating system refused a read or write.</summary>
        IO = 5,
        /// <summary>A file or buffer is truncated, corrupted, of an unknown version or the wrong kind.</summary>
        Format = 6,
        /// <summary>An allocation failed or a request exceeds the documented size limits.</summary>
        OutOfMemory = 7,
        /// <summary>A bug inside the library; the object involved becomes unusable.</summary>
        Internal = 8,
        /// <summary>The build or the loaded runtime lacks a feature (e.g. GPU support, or an incompatible library version).</summary>
        Unsupported = 9,
        /// <summary>FAISS or ONNX Runtime reported a failure.</summary>
        Backend = 10,
    }

    /// <summary>
    /// A failure reported by libpatchcore, or an invalid argument caught by the binding before
    /// the call. <see cref="Status"/> is the library's status code and <see cref="NativeMessage"/>
    /// its message, which names the function and the offending value or path.
    /// </summary>
    public class PatchCoreException : Exception
    {
        /// <summary>Creates an exception for a status and message.</summary>
        public PatchCoreException(PatchCoreStatus status, string message)
            : base(StatusName(status) + ": " + message)
        {
            Status = status;
            NativeMessage = message;
        }

        /// <summary>The status code.</summary>
        public PatchCoreStatus Status { get; }

        /// <summary>The message without the status prefix.</summary>
        public string NativeMessage { get; }

        private static string StatusName(PatchCoreStatus status)
        {
            switch (status)
            {
                case PatchCoreStatus.Ok: return "PATCHCORE_OK";
                case PatchCoreStatus.InvalidArgument: return "PATCHCORE_ERR_INVALID_ARGUMENT";
                case PatchCoreStatus.InvalidHandle: return "PATCHCORE_ERR_INVALID_HANDLE";
                case PatchCoreStatus.InvalidState: return "PATCHCORE_ERR_INVALID_STATE";
                case PatchCoreStatus.BufferTooSmall: return "PATCHCORE_ERR_BUFFER_TOO_SMALL";
                case PatchCoreStatus.IO: return "PATCHCORE_ERR_IO";
                case PatchCoreStatus.Format: return "PATCHCORE_ERR_FORMAT";
                case PatchCoreStatus.OutOfMemory: return "PATCHCORE_ERR_OUT_OF_MEMORY";
                case PatchCoreStatus.Internal: return "PATCHCORE_ERR_INTERNAL";
                case PatchCoreStatus.Unsupported: return "PATCHCORE_ERR_UNSUPPORTED";
                case PatchCoreStatus.Backend: return "PATCHCORE_ERR_BACKEND";
                default: return "PATCHCORE_ERR_UNKNOWN(" + (int)status + ")";
            }
        }
    }

    /// <summary>Status checks and argument validation shared by the public classes.</summary>
    internal static unsafe class Errors
    {
        /// <summary>Throws a PatchCoreException with the calling thread's last error unless status is OK.</summary>
        internal static void Check(int status)
        {
            if (status != 0)
            {
                throw new PatchCoreException((PatchCoreStatus)status, LastError());
            }
        }

        /// <summary>The calling thread's last error message from the library.</summary>
        internal static string LastError()
        {
            const int Inline = 512;
            byte* small = stackalloc byte[Inline];
            ulong needed = NativeMethods.patchcore_last_error(small, (UIntPtr)Inline).ToUInt64();
            if (needed <= Inline)
            {
                return Decode(small, (int)needed - 1);
            }
            var large = new byte[needed];
            fixed (byte* p = large)
            {
                NativeMethods.patchcore_last_error(p, (UIntPtr)needed);
                return Decode(p, (int)needed - 1);
            }
        }

        /// <summary>Decodes a NUL-terminated UTF-8 string the library owns (static strings).</summary>
        internal static string FromUtf8(IntPtr p)
        {
            if (p == IntPtr.Zero)
            {
                return null;
            }
            byte* s = (byte*)p;
            int n = 0;
            while (s[n] != 0)
            {
                n++;
            }
            return Decode(s, n);
        }

        private static string Decode(byte* s, int n)
        {
            return n <= 0 ? string.Empty : Encoding.UTF8.GetString(s, n);
        }

        /// <summary>An InvalidArgument exception raised by the binding itself.</summary>
        internal static PatchCoreException Invalid(string function, string message)
        {
            return new PatchCoreException(PatchCoreStatus.InvalidArgument, function + ": " + message);
        }

        /// <summary>Throws InvalidArgument when value is null.</summary>
        internal static void NotNull(object value, string function, string name)
        {
            if (value == null)
            {
                throw Invalid(function, name + " is null");
            }
        }

        /// <summary>Throws InvalidArgument when a string is null (unless allowed) or holds a NUL character.</summary>
        internal static void CheckString(string value, string function, string name, bool allowNull)
        {
            if (value == null)
            {
                if (!allowNull)
                {
                    throw Invalid(function, name + " is null");
                }
                return;
            }
            if (value.IndexOf('\0') >= 0)
            {
                throw Invalid(function, name + " contains a NUL character");
            }
        }

        /// <summary>Checks that [offset, offset + count) lies inside an array of the given length.</summary>
        internal static void CheckRange(int length, int offset, long count, string function, string name)
        {
            if (offset < 0 || count < 0 || offset > length || count > length - offset)
            {
                throw Invalid(function, string.Format(
                    "{0} holds {1} elements; offset {2} + count {3} does not fit", name, length, offset, count));
            }
        }

        /// <summary>Throws InvalidArgument unless value is positive.</summary>
        internal static void Positive(long value, string function, string name)
        {
            if (value <= 0)
            {
                throw Invalid(function, name + " must be positive, got " + value);
            }
        }

        /// <summary>The product of dimensions, or InvalidArgument when it overflows an array length.</summary>
        internal static int Product(string function, string name, params long[] dims)
        {
            long total = 1;
            foreach (long d in dims)
            {
                if (d < 0)
                {
                    throw Invalid(function, name + " has a negative dimension " + d);
                }
                if (d > int.MaxValue || (total != 0 && d > int.MaxValue / total))
                {
                    throw Invalid(function, name + " is larger than a .NET array (" + string.Join("x", dims) + ")");
                }
                total *= d;
            }
            return (int)total;
        }
    }
}
